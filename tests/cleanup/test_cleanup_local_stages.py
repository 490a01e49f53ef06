"""Stage cleanup of a ``:local`` stages storage: the project's stage images in a real Docker daemon."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

from ci_env import records
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World, signature_of
from tests.services.dockerd import DockerDaemon


def import_image(dockerd: DockerDaemon, tmp_path: Path, signature: str, *names: str) -> None:
    """A tiny local image labelled with ``signature`` (as build-and-publish labels stages), tagged ``names``."""
    archive = tmp_path / f"{signature[:12]}.tar"
    data = signature.encode()
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("stage")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    dockerd.docker("import", "--change", f"LABEL werf-content-signature={signature}", str(archive), names[0])
    for name in names[1:]:
        dockerd.docker("tag", names[0], name)


def write_werf_yaml(directory: Path, project: str) -> None:
    (directory / "api").mkdir()
    (directory / "api" / "Dockerfile").write_text("FROM scratch\n")
    (directory / "werf.yaml").write_text(f"project: {project}\nconfigVersion: 1\n---\nimage: api\ncontext: api\n")


def local_names(dockerd: DockerDaemon) -> set[str]:
    out = dockerd.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    return {line for line in out.splitlines() if line and "<none>" not in line}


def test_local_stages_no_kept_tag_uses_are_removed(world: World, dockerd: DockerDaemon, tmp_path: Path) -> None:
    project = f"p{uuid.uuid4().hex[:10]}"
    state = tmp_path / "state"
    git = GitRepo(tmp_path / "project")
    write_werf_yaml(git.path, project)
    git.commit("one")
    git.git("branch", "feature-a")
    world.store = records.open_store(None, project, env={"XDG_STATE_HOME": str(state)})
    kept, stale, orphan, foreign = (signature_of(f"{project}-{n}") for n in ("main", "feat", "orphan", "foreign"))
    world.publish("api", "main", "git-branch", git_ref="main", signature=kept)
    world.publish("api", "feature-a", "git-branch", git_ref="feature-a", signature=stale)
    git.git("branch", "-D", "feature-a")
    stages = f"ci-env-stages/{project}"
    published = f"{world.images_repo.child('api')}:feature-a"
    import_image(dockerd, tmp_path, kept, f"{stages}:{kept}", f"{world.images_repo.child('api')}:main")
    import_image(dockerd, tmp_path, stale, f"{stages}:{stale}", published)
    import_image(dockerd, tmp_path, orphan, f"{stages}:{orphan}")
    import_image(dockerd, tmp_path, foreign, f"ci-env-stages/other-{project}:{foreign}")
    before = local_names(dockerd)
    env = {"DOCKER_HOST": dockerd.host, "XDG_STATE_HOME": str(state)}
    args = ["cleanup", "-i", str(world.images_repo), "-s", ":local", "--dir", str(git.path)]

    # the stages were created just now: --keep-published-within (default 2h) protects them
    report = tmp_path / "protected.json"
    result = run_cli(*args, "--report", str(report), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert local_names(dockerd) == before
    stage_reasons = {d["tag"]: d["reason"] for d in json.loads(report.read_text())["decisions"] if d["kind"] == "stage"}
    assert set(stage_reasons) == {kept, stale, orphan}  # another project's stage is not ours
    assert stage_reasons[stale].startswith("protected: created")
    assert world.tags("api") == {"main"}

    dry = run_cli(*args, "--keep-published-within", "0", "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert local_names(dockerd) == before

    report = tmp_path / "report.json"
    result = run_cli(*args, "--keep-published-within", "0", "--report", str(report), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert local_names(dockerd) == before - {published, f"{stages}:{stale}", f"{stages}:{orphan}"}
    outcomes = {d["tag"]: d["outcome"] for d in json.loads(report.read_text())["decisions"] if d["kind"] == "stage"}
    assert outcomes == {kept: "kept", stale: "removed", orphan: "removed"}


def test_local_stages_without_a_daemon_are_reported_not_fatal(world: World, tmp_path: Path) -> None:
    project = f"p{uuid.uuid4().hex[:10]}"
    git = GitRepo(tmp_path / "project")
    write_werf_yaml(git.path, project)
    git.commit("one")
    report = tmp_path / "report.json"
    result = run_cli("cleanup", "-i", str(world.images_repo), "-s", ":local", "--dir", str(git.path), "--report",
                     str(report), cwd=tmp_path,
                     env={"DOCKER_HOST": f"unix://{tmp_path / 'no.sock'}", "XDG_STATE_HOME": str(tmp_path / "s")})
    assert result.returncode == 0, result.stderr
    assert "ci-env: warning: the local Docker daemon cannot be reached" in result.stderr
    skipped = json.loads(report.read_text())["skipped"]
    assert skipped == [{"reference": f"ci-env-stages/{project}",
                        "reason": skipped[0]["reason"]}] and "Docker daemon cannot be reached" in skipped[0]["reason"]
