"""werf.yaml cannot run code or reach outside the project: Jinja2's sandbox, and contexts and Dockerfiles
confined to the project directory. Each refusal is one ConfigError line naming the file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci_env.errors import ConfigError
from ci_env.werf_config import load_project
from tests.cli import environ_without, run_ci_env

META = "project: demo\nconfigVersion: 1\n---\n"

#: templates that, outside a sandbox, reach Python objects (and through them run ``touch PWNED``)
ESCAPES = [
    "{{ env.__globals__ }}",
    "{{ env.__globals__['os'].system('touch PWNED') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ project_dir.__class__.__base__.__subclasses__() }}",
    "{{ env.__code__.co_consts }}",
]


def _project(tmp_path: Path, werf_yaml: str) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "werf.yaml").write_text(werf_yaml)
    return tmp_path


@pytest.mark.parametrize("payload", ESCAPES)
def test_template_cannot_reach_python_objects(tmp_path: Path, payload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{payload}\"\n")
    with pytest.raises(ConfigError) as error:
        load_project(tmp_path, env={})
    assert str(error.value).startswith(f"{tmp_path / 'werf.yaml'}:6: template error: ")
    assert "unsafe" in str(error.value)
    assert not (tmp_path / "PWNED").exists()


def test_template_cannot_exhaust_memory(tmp_path: Path) -> None:
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{{{{ 'x' * 1000000000 }}}}\"\n")
    with pytest.raises(ConfigError, match=r"werf\.yaml:6: template error: .*too large"):
        load_project(tmp_path, env={})


#: templates that grow without one large ``*``: through loops, join, a namespace or a list (gigabytes unbounded)
GROWING = [
    ("{% for a in range(1000) %}{% for b in range(100) %}{{ 'x' * 100000 }}{% endfor %}{% endfor %}",
     r"werf\.yaml:6: template error: the rendered werf\.yaml is too large \(more than 4000000 characters"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
     r"werf\.yaml:6: template error: the number of range\(\) items the template loops over is too large"),
    ("{{ (['x' * 1000000] * 1000) | join }}",
     r"werf\.yaml:6: template error: a join\(\) result of \d+ characters is too large"),
    ("{{ ([['x' * 1000000] * 1000] * 1000) | join(',') }}",
     r"werf\.yaml:6: template error: a join\(\) result of \d+ characters is too large"),
    ("{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
     "{{ ns.s | length }}",
     r"werf\.yaml:6: template error: a namespace value of \d+ characters is too large"),
    ("{% set l = [] %}{% for i in range(100000) %}{{ l.append('x' * 100000) or '' }}{% endfor %}{{ l | length }}",
     r"werf\.yaml:6: template error: what the template adds to lists and dicts is too large"),
]


@pytest.mark.parametrize(("payload", "message"), GROWING,
                         ids=["nested-loops", "loops-without-output", "join", "nested-join", "namespace", "list"])
def test_a_template_growing_through_loops_or_join_stays_bounded(tmp_path: Path, payload: str, message: str) -> None:
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{payload}\"\n")
    with pytest.raises(ConfigError, match=message):
        load_project(tmp_path, env={})


def test_a_growing_template_is_one_template_error_in_the_cli(tmp_path: Path) -> None:
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{GROWING[0][0]}\"\n")
    result = run_ci_env("build-and-publish", "-i", "127.0.0.1:9/acme", "-s", "127.0.0.1:9/acme/stages",
                        "--tag-custom", "v1", env={**environ_without(), "HOME": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"ci-env: error: {tmp_path.resolve() / 'werf.yaml'}:6: template error: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_loops_and_joins_of_a_real_werf_yaml_still_render(tmp_path: Path) -> None:
    images = ("{% for name in ['api', 'web', 'worker'] %}---\nimage: {{ name }}\n"
              "args:\n  ALL: \"{{ ['a', 'b'] | join(',') }}\"\n{% endfor %}")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "werf.yaml").write_text("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
                                        "{% endfor %}project: demo{{ ns.n }}\nconfigVersion: 1\n" + images)
    project = load_project(tmp_path, env={})
    assert project.project == "demo3"
    assert [image.name for image in project.images] == ["api", "web", "worker"]


#: templates whose evaluation fails in Python (not in Jinja2): each is one template error, never a traceback
FAILING = [
    ("{{ range(10 ** 9) | length }}", "Range too big"),
    ("{{ 1 / 0 }}", "division by zero"),
    ("{{ env('HOME', 'x') + 1 }}", "TypeError"),
    ("{{ '{:q}'.format(1) }}", "ValueError"),
    ("{{ lipsum() }}", "'lipsum' is undefined"),
]


@pytest.mark.parametrize(("payload", "what"), FAILING)
def test_a_template_failing_in_python_is_one_template_error(tmp_path: Path, payload: str, what: str) -> None:
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{payload}\"\n")
    with pytest.raises(ConfigError) as error:
        load_project(tmp_path, env={})
    assert str(error.value).startswith(f"{tmp_path / 'werf.yaml'}:6: template error: ")
    assert what in str(error.value)


def test_a_macro_recursing_without_end_is_one_template_error_in_the_cli(tmp_path: Path) -> None:
    _project(tmp_path, f"{META}{{% macro r(n) %}}{{{{ r(n + 1) }}}}{{% endmacro %}}\nimage: \"{{{{ r(0) }}}}\"\n")
    result = run_ci_env("build-and-publish", "-i", "127.0.0.1:9/acme", "-s", "127.0.0.1:9/acme/stages",
                        "--tag-custom", "v1", env={**environ_without(), "HOME": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"ci-env: error: {tmp_path.resolve() / 'werf.yaml'}:")
    assert "template error: " in result.stderr and "recursion" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("payload", [
    "{{ '%0200000000d' % 1 }}",
    "{{ '%.200000000f' % 1 }}",
    "{{ '%*d' % (200000000, 1) }}",
    "{{ '{:>200000000}'.format(1) }}",
    "{{ '{0:{1}}'.format(1, 200000000) }}",
    "{{ 'x' | center(200000000) }}",
    "{{ 'x' | indent(200000000, true) }}",
    "{{ '%0200000000d' | format(1) }}",
    "{{ 'x'.ljust(200000000) }}",
    "{{ 'x'.zfill(200000000) }}",
    "{{ ('a' * 1000000).replace('a', 'b' * 200) }}",
    "{{ ('\\t' * 1000).expandtabs(200000) }}",
])
def test_string_formatting_cannot_exhaust_memory(tmp_path: Path, payload: str) -> None:
    """A width in a format (``%``, ``.format``, the ``format``, ``center`` and ``indent`` filters) or a string
    method makes a string of that many characters: 200 MB each here, as many as the template likes unbounded."""
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{payload}\"\n")
    with pytest.raises(ConfigError, match=r"werf\.yaml:6: template error: .*too large"):
        load_project(tmp_path, env={})


def test_env_and_project_dir_keep_working_in_the_sandbox(tmp_path: Path) -> None:
    _project(tmp_path, META + "image: {{ env('NAME', 'app') }}\nargs:\n  DIR: {{ project_dir }}\n"
             "  N: \"{{ range(3) | join(',') }}\"\n"
             "  F: \"{{ '%05d|%-4s|%.2f' % (42, 'a', 1.5) }} {{ '{:>6}'.format('b') }} {{ 'c' | center(5) }}\"\n")
    image = load_project(tmp_path, env={"NAME": "api"}).images[0]
    assert image.name == "api"
    assert dict(image.args) == {"DIR": str(tmp_path.resolve()), "N": "0,1,2", "F": "00042|a   |1.50      b   c  "}


def test_build_and_publish_refuses_an_escaping_werf_yaml_before_running_anything(tmp_path: Path) -> None:
    _project(tmp_path, f"{META}image: app\nargs:\n  X: \"{ESCAPES[1]}\"\n")
    env = {**environ_without(), "HOME": str(tmp_path)}
    result = run_ci_env("build-and-publish", "-i", "127.0.0.1:9/acme", "-s", "127.0.0.1:9/acme/stages",
                        "--tag-custom", "v1", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ci-env: error: {tmp_path.resolve() / 'werf.yaml'}:6: template error: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(("image", "line", "what"), [
    ("image: app\ncontext: /\n", 5, "context '/'"),
    ("image: app\ncontext: ../..\n", 5, "context '../..'"),
    ("image: app\ncontext: out\n", 5, "context 'out'"),  # a symlink to a directory outside
    ("image: app\ndockerfile: ../outside/Dockerfile\n", 5, "Dockerfile '../outside/Dockerfile'"),
    ("image: app\ncontext: sub\ndockerfile: escape\n", 6, "Dockerfile 'escape'"),  # a symlink out
])
def test_context_or_dockerfile_outside_the_project_is_refused(tmp_path: Path, image: str, line: int, what: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "sub").mkdir()
    os.symlink(outside, project / "out")
    os.symlink(outside / "Dockerfile", project / "sub" / "escape")
    _project(project, META + image)
    with pytest.raises(ConfigError) as error:
        load_project(project, env={})
    message = str(error.value)
    assert message.startswith(f"{project / 'werf.yaml'}:{line}: {what} of image 'app' is outside the project")


def test_context_and_dockerfile_symlinked_within_the_project_are_fine(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "Dockerfile").write_text("FROM scratch\n")
    os.symlink(tmp_path / "real", tmp_path / "alias")
    _project(tmp_path, META + "image: app\ncontext: alias\n")
    assert load_project(tmp_path, env={}).images[0].context == (tmp_path / "real").resolve()
