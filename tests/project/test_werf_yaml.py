"""werf.yaml: rendering, parsing and every mistake a user can make, with file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ci_env.errors import ConfigError
from ci_env.werf_config import load_project


def write_project(tmp_path: Path, text: str, dockerfiles: tuple[str, ...] = ("Dockerfile",)) -> Path:
    for name in dockerfiles:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("FROM scratch\n")
    (tmp_path / "werf.yaml").write_text(text)
    return tmp_path


def test_named_images_with_all_keys(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "project: demo\nconfigVersion: 1\n---\nimage: frontend\ncontext: web\ndockerfile: Dockerfile.web\n"
        "target: prod\nargs:\n  VERSION: 1.2\n  DEBUG: false\n---\nimage: backend\n",
        ("web/Dockerfile.web", "Dockerfile"),
    )
    project = load_project(tmp_path, env={})
    assert project.project == "demo"
    assert [i.name for i in project.images] == ["frontend", "backend"]
    frontend = project.image("frontend")
    assert frontend.context == (tmp_path / "web").resolve()
    assert frontend.dockerfile == (tmp_path / "web" / "Dockerfile.web").resolve()
    assert frontend.target == "prod"
    assert dict(frontend.args) == {"VERSION": "1.2", "DEBUG": "false"}
    assert frontend.line == 4
    assert project.image("backend").dockerfile == (tmp_path / "Dockerfile").resolve()


def test_nameless_image(tmp_path: Path) -> None:
    write_project(tmp_path, "project: demo\nconfigVersion: 1\n---\nimage: ~\n")
    project = load_project(tmp_path, env={})
    assert [i.display_name for i in project.images] == ["~"]
    assert project.image("~").name is None


def test_jinja_env_and_project_dir(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        'project: {{ env("PROJECT", "fallback") }}\nconfigVersion: 1\n'
        "{% for name in ['a', 'b'] %}---\nimage: {{ name }}\nargs:\n  DIR: {{ project_dir }}\n"
        '  V: "{{ env("V", "none") }}"\n{% endfor %}',
    )
    project = load_project(tmp_path, env={"V": "7"})
    assert project.project == "fallback"
    assert [i.name for i in project.images] == ["a", "b"]
    assert project.image("a").args["DIR"] == str(tmp_path.resolve())
    assert project.image("b").args["V"] == "7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("project: demo\nconfigVersion: 1\n---\nimage: app\ndockerfil: x\n", "werf.yaml:5: unknown key 'dockerfil'"),
        (
            "project: demo\nconfigVersion: 1\n---\nimage: app\n---\nimage: app\n",
            "werf.yaml:6: image 'app' is defined twice",
        ),
        ("project: demo\nconfigVersion: 1\n---\nimage: App\n", "werf.yaml:4: invalid image name 'App'"),
        ("project: demo\nconfigVersion: 1\n---\nimage: ~\n---\nimage: ~\n", "werf.yaml:6: a second nameless image"),
        ("project: demo\nconfigVersion: 1\n---\nimage: a\n---\nimage: ~\n", "werf.yaml:6: a nameless image"),
        ("project: demo\nconfigVersion: 1\n---\nimage: a\ndockerfile: nope\n", "werf.yaml:5: Dockerfile 'nope'"),
        ("project: demo\nconfigVersion: 1\n---\nimage: {{ oops(\n", "werf.yaml:4: template error"),
        ("project: demo\nconfigVersion: 1\n---\nimage: {{ missing }}\n", "template error: 'missing' is undefined"),
        ("project: demo\nconfigVersion: 2\n---\nimage: a\n", "werf.yaml:2: configVersion must be 1"),
        ("image: a\n", "no meta document"),
        ("project: demo\nconfigVersion: 1\n", "no images"),
        ("project: demo\nconfigVersion: 1\n---\nimage: a\n  bad: [\n", "invalid YAML"),
        ("project: demo\nconfigVersion: 1\n---\nimage: a\nargs: [1]\n", "werf.yaml:5: args of image 'a'"),
        ("project: demo\nconfigVersion: 1\n---\nimage: a\ncontext: nowhere\n", "werf.yaml:5: context 'nowhere'"),
        ('project: {{ env("NOPE") }}\nconfigVersion: 1\n', "env('NOPE') is not set"),
    ],
)
def test_mistakes_name_file_line_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    write_project(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path, env={})
    assert expected in info.value.message


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no werf\.yaml in"):
        load_project(tmp_path, env={})
    with pytest.raises(ConfigError, match="pass --config"):
        load_project(tmp_path, config="other.yaml", env={})


def test_import_does_not_load_jinja_or_yaml() -> None:
    code = "import sys, ci_env.werf_config; print('jinja2' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_werf_yaml_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "werf.yaml").write_bytes(b"project: demo\nconfigVersion: 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"werf\.yaml is not UTF-8 text \(byte 31\); save werf\.yaml as UTF-8"):
        load_project(tmp_path)


def test_project_directory_with_a_name_too_long_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot use .*: File name too long; check --dir and --config"):
        load_project(tmp_path / ("a" * 5000))
