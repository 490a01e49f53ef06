"""The content signature's inputs, and how output folds on each CI."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from ci_env.output import Output, format_table
from ci_env.signature import content_signature


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.sh").write_text("echo hi\n")
    (tmp_path / "README.md").write_text("docs\n")
    return tmp_path


def sign(context: Path, name: str | None = "app", args: dict[str, str] | None = None, target: str | None = None
         ) -> str:
    return content_signature(name, context, context / "Dockerfile", args or {}, target)


def test_signature_is_stable_and_hex(context: Path) -> None:
    first = sign(context)
    assert first == sign(context)
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "src" / "main.sh").write_text("echo bye\n"),
        lambda c: (c / "src" / "new.txt").write_text(""),
        lambda c: (c / "Dockerfile").write_text("FROM scratch\nCOPY . /x/\n"),
        lambda c: os.chmod(c / "src" / "main.sh", 0o755),
        lambda c: (c / "src" / "main.sh").rename(c / "src" / "renamed.sh"),
        lambda c: (c / "link").symlink_to("src/main.sh"),
        lambda c: (c / "empty-dir").mkdir(),
    ],
    ids=["content", "new-file", "dockerfile", "exec-bit", "rename", "symlink", "directory"],
)
def test_signature_changes_with_each_input(context: Path, change: object) -> None:
    before = sign(context)
    change(context)  # type: ignore[operator]
    assert sign(context) != before


def test_signature_covers_args_target_and_name(context: Path) -> None:
    base = sign(context)
    assert sign(context, args={"A": "1"}) != base
    assert sign(context, args={"A": "1", "B": "2"}) == sign(context, args={"B": "2", "A": "1"})
    assert sign(context, target="prod") != base
    assert sign(context, name="other") != base
    assert sign(context, name=None) != base


def test_symlink_target_counts(context: Path) -> None:
    (context / "link").symlink_to("src/main.sh")
    before = sign(context)
    (context / "link").unlink()
    (context / "link").symlink_to("README.md")
    assert sign(context) != before


def test_dockerignored_files_and_mtimes_do_not_count(context: Path) -> None:
    (context / ".dockerignore").write_text("# docs\n*.md\n")
    before = sign(context)
    (context / "README.md").write_text("changed docs\n")
    os.utime(context / "src" / "main.sh", (1, 1))
    assert sign(context) == before


def test_gitlab_sections_use_the_escape_lines() -> None:
    stream = io.StringIO()
    output = Output("gitlab", stream)
    with output.section("image web: build", "image_web") as section:
        section.line("Step 1/2 : FROM scratch\n\n")
    lines = stream.getvalue().split("\n")
    assert lines[0].startswith("\x1b[0Ksection_start:")
    assert lines[0].endswith(":image_web_1[collapsed=true]\r\x1b[0Kimage web: build")
    assert lines[1] == "Step 1/2 : FROM scratch"
    assert lines[2].startswith("\x1b[0Ksection_end:") and ":image_web_1\r" in lines[2]


def test_github_groups_and_buffered_sections_do_not_interleave() -> None:
    stream = io.StringIO()
    output = Output("github", stream, live=False)
    first = output.section("a").__enter__()
    second = output.section("b").__enter__()
    first.line("one")
    second.line("two")
    second.__exit__(None, None, None)
    first.__exit__(None, None, None)
    assert stream.getvalue().splitlines() == ["::group::b", "two", "::endgroup::", "::group::a", "one", "::endgroup::"]


def test_build_output_cannot_inject_escape_sequences() -> None:
    stream = io.StringIO()
    with Output("generic", stream).section("x") as section:
        section.line("evil \x1b[0Ksection_end:1:x\r\x1b[0K")
    assert "\x1b" not in stream.getvalue()


def test_table_is_aligned() -> None:
    lines = format_table(("image", "result"), [["frontend", "built"], ["be", "reused"]])
    assert lines == ["image     result", "--------  ------", "frontend  built", "be        reused"]
