"""Every pin a user copies works at what it pins: each ``uses: ci-env/ci-env@<sha> # vX`` in the README,
docs/ and examples/ names a commit of this repository whose action.yml has every input used with it, whose
version is X and whose dist/ci-env.pyz has the sha256 the GitLab template pins for X; the GitLab
quickstart's include ref and CI_ENV_VERSION name the current release.

The commits are read from this repository's history (a shallow clone lacks them: the test fails under CI,
skips elsewhere, and says so).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest
import yaml

from ci_env import __version__
from tests.integrations.conftest import ROOT

PIN = re.compile(r"^(?P<indent> *)- uses: ci-env/ci-env@(?P<sha>[0-9a-f]{40}) # v(?P<version>\S+)$", re.M)
FILES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")),
         *sorted(f"examples/{p.name}" for p in (ROOT / "examples").glob("*.yml"))]


def _git(*args: str, binary: bool = False) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=not binary)


def _pins() -> list[tuple[str, str, str, set[str]]]:
    """(file, sha, version, inputs used in its ``with:``) for every pin of the Action."""
    found = []
    for name in FILES:
        lines = (ROOT / name).read_text().splitlines()
        for number, line in enumerate(lines):
            match = PIN.match(line)
            if not match:
                continue
            inputs: set[str] = set()
            step_indent = len(match.group("indent")) + 2
            rest = lines[number + 1:]
            if rest and rest[0].strip() == "with:" and len(rest[0]) - len(rest[0].lstrip()) == step_indent:
                for item in rest[1:]:
                    if not item.strip() or len(item) - len(item.lstrip()) <= step_indent:
                        break
                    key = re.match(r"^ *([A-Za-z0-9_-]+):", item)
                    if key:
                        inputs.add(key.group(1))
            found.append((name, match.group("sha"), match.group("version"), inputs))
    return found


def _template_digest(version: str) -> str | None:
    text = (ROOT / ".gitlab-ci-template.yml").read_text()
    match = re.search(rf'^ *{re.escape(version)}\) ci_env_sha256="([0-9a-f]{{64}})" ;;$', text, re.M)
    return match.group(1) if match else None


def test_every_action_pin_names_a_commit_with_its_inputs_version_and_zipapp() -> None:
    pins = _pins()
    assert len(pins) >= 2, "the quickstart pins the Action"
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        message = "a shallow clone: the pinned commits are not in its history (fetch the whole history)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    for name, sha, version, used in pins:
        where = f"{name}: ci-env/ci-env@{sha} # v{version}"
        action = _git("show", f"{sha}:action.yml")
        assert action.returncode == 0, f"{where}: no such commit with an action.yml in this repository"
        inputs = set(yaml.safe_load(action.stdout)["inputs"])
        assert used <= inputs, f"{where}: its action.yml has no input {sorted(used - inputs)}"
        init = _git("show", f"{sha}:ci_env/__init__.py").stdout
        assert f'__version__ = "{version}"' in init, f"{where}: that commit is not version {version}"
        pyz = _git("show", f"{sha}:dist/ci-env.pyz", binary=True)
        assert pyz.returncode == 0, f"{where}: that commit has no dist/ci-env.pyz for the Action to run"
        assert hashlib.sha256(pyz.stdout).hexdigest() == _template_digest(version), (
            f"{where}: its dist/ci-env.pyz is not the one the template pins for {version}")


def test_the_action_is_pinned_to_the_current_release() -> None:
    assert {version for _, _, version, _ in _pins()} == {__version__}


def test_the_gitlab_quickstart_pins_the_current_release() -> None:
    example = (ROOT / "examples" / "gitlab-ci.yml").read_text()
    assert f"/-/raw/v{__version__}/.gitlab-ci-template.yml" in example
    assert f'CI_ENV_VERSION: "{__version__}"' in example
    assert _template_digest(__version__), f"the template pins the sha256 of {__version__}"


def test_the_readme_download_checks_the_release_digest() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"/-/raw/v{__version__}/dist/ci-env.pyz" in readme
    assert f'echo "{_template_digest(__version__)}  ci-env.pyz" | sha256sum -c -' in readme


def test_inputs_used_with_the_pin_are_found() -> None:
    """The check reads the ``with:`` of a pinned step (so a missing input is caught)."""
    assert any({"command"} <= used for _, _, _, used in _pins())
