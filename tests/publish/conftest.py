"""Helpers for build-and-publish tests: small projects, the CLI as a user runs it, registry reads."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.services.dockerd import DockerDaemon
from tests.services.registry import RegistryService

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
REPO_ROOT = Path(__file__).resolve().parents[2]


def write_project(root: Path, images: Mapping[str | None, Mapping[str, str]], project: str = "demo") -> Path:
    """A werf.yaml project: each image gets ``<name>/Dockerfile`` (FROM scratch, COPY .) and the given files."""
    docs = [f"project: {project}\nconfigVersion: 1\n"]
    for name, files in images.items():
        folder = "nameless" if name is None else name
        context = root / folder
        context.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile").write_text("FROM scratch\nCOPY . /app/\n")
        for relative, content in files.items():
            path = context / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        docs.append(f"image: {'~' if name is None else name}\ncontext: {folder}\n")
    (root / "werf.yaml").write_text("---\n".join(docs))
    return root


@dataclass
class Cli:
    """Runs ``python -m ci_env`` as a user would, with a clean environment."""

    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, check: bool = True, extra_env: Mapping[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra_env or {})}
        result = subprocess.run([sys.executable, "-m", "ci_env", *args], cwd=self.cwd, env=env,
                                capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result


def clean_env(tmp: Path, docker_host: str | None) -> dict[str, str]:
    """The environment of a CI job on a generic runner: no WERF_*, no CI vendor variables."""
    keep = {"PATH", "LANG", "LC_ALL", "PYTHONPATH", "HOME", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    config = tmp / "docker-config"
    config.mkdir(mode=0o700, exist_ok=True)
    if not (config / "config.json").exists():
        (config / "config.json").write_text("{}")
    env["DOCKER_CONFIG"] = str(config)
    env["XDG_STATE_HOME"] = str(tmp / "state")
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def login(env: Mapping[str, str], registry: RegistryService, user: str, password: str) -> None:
    """Write credentials for ``registry`` into the job's Docker config, as docker login does."""
    path = Path(env["DOCKER_CONFIG"]) / "config.json"
    data = json.loads(path.read_text())
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data.setdefault("auths", {})[registry.host] = {"auth": token}
    path.write_text(json.dumps(data))


@pytest.fixture
def cli(tmp_path: Path, dockerd: DockerDaemon) -> Cli:
    project = tmp_path / "project"
    project.mkdir()
    return Cli(clean_env(tmp_path, dockerd.host), project)


class RegistryReader:
    """Reads what a registry holds, with plain HTTP (independent of the code under test)."""

    def __init__(self, registry: RegistryService, user: str | None = None, password: str | None = None) -> None:
        self.registry = registry
        self.auth = (user, password) if user and password else None

    def get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(f"{self.registry.url}/v2/{path}", headers=headers, auth=self.auth, timeout=10)

    def tags(self, repository: str) -> list[str]:
        response = self.get(f"{repository}/tags/list")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def digest(self, repository: str, tag: str) -> str:
        response = requests.head(f"{self.registry.url}/v2/{repository}/manifests/{tag}",
                                 headers={"Accept": ACCEPT}, auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def manifest(self, repository: str, tag: str) -> dict[str, object]:
        response = self.get(f"{repository}/manifests/{tag}", Accept=ACCEPT)
        response.raise_for_status()
        return dict(response.json())

    def labels(self, repository: str, tag: str) -> dict[str, str]:
        manifest = self.manifest(repository, tag)
        config = manifest["config"]
        assert isinstance(config, dict)
        blob = self.get(f"{repository}/blobs/{config['digest']}")
        blob.raise_for_status()
        return dict(blob.json()["config"].get("Labels") or {})

    def files(self, repository: str, tag: str) -> dict[str, bytes]:
        """The files of the image's layers (later layers win)."""
        import io
        import tarfile

        manifest = self.manifest(repository, tag)
        files: dict[str, bytes] = {}
        layers = manifest["layers"]
        assert isinstance(layers, list)
        for layer in layers:
            blob = self.get(f"{repository}/blobs/{layer['digest']}")
            blob.raise_for_status()
            with tarfile.open(fileobj=io.BytesIO(blob.content)) as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        extracted = archive.extractfile(member)
                        assert extracted is not None
                        files[member.name] = extracted.read()
        return files


def uploads(registry: RegistryService, since: int = 0) -> list[tuple[str, str, int]]:
    """Blob upload requests (POST without mount, PATCH, PUT on /blobs/uploads/) in the access log after ``since``."""
    result = []
    for method, path, status in registry.requests()[since:]:
        if "/blobs/uploads/" not in path:
            continue
        if method == "POST" and "mount=" in path:
            continue
        if method in ("PATCH", "PUT") or method == "POST":
            result.append((method, path, status))
    return result


def blob_data_uploads(registry: RegistryService, since: int = 0) -> list[tuple[str, str, int]]:
    """Requests that carry blob bytes (PATCH, PUT to an upload)."""
    return [r for r in uploads(registry, since) if r[0] in ("PATCH", "PUT")]


def build_events(dockerd: DockerDaemon, since: str) -> list[str]:
    """Ids of images the daemon created (``docker events``, image tag/build-related) since ``since``."""
    result = dockerd.docker("events", "--since", since, "--until", "0s", "--format", "{{json .}}")
    return [line for line in result.stdout.splitlines() if line.strip()]


RegistryFactory = Callable[..., RegistryService]
