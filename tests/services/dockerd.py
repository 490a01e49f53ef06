"""A real Docker daemon (Debian's ``docker.io``) as a test service.

Started without iptables or a bridge, with everything under one temp dir, on
overlay2 when the kernel allows it (about 8x faster builds) and vfs otherwise.
Loopback registries are insecure by default for dockerd, so pushes to the test
registries work over plain HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.services import require, unavailable, wait_until


@dataclass
class DockerDaemon:
    """A running dockerd: its socket and its directory."""

    directory: Path
    process: subprocess.Popen[bytes]
    storage_driver: str

    @property
    def host(self) -> str:
        """The value for ``DOCKER_HOST``."""
        return f"unix://{self.directory / 'docker.sock'}"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon."""
        env = {**os.environ, "DOCKER_HOST": self.host}
        return subprocess.run(["docker", *args], env=env, check=check, capture_output=True, text=True)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            target = line.split()[1]
            if target.startswith(str(self.directory)):
                subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _start(directory: Path, driver: str) -> DockerDaemon | None:
    binary = require("dockerd", "a real Docker daemon, Debian package docker.io")
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / f"dockerd-{driver}.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            f"--storage-driver={driver}",
            "--data-root", str(directory / "root"),
            "--exec-root", str(directory / "exec"),
            "--pidfile", str(directory / "dockerd.pid"),
            "--host", f"unix://{directory / 'docker.sock'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    daemon = DockerDaemon(directory, process, driver)

    def ready() -> bool:
        if process.poll() is not None:
            return True
        return daemon.docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0

    try:
        wait_until(ready, 30, "dockerd")
    except RuntimeError:
        daemon.stop()
        return None
    if process.poll() is not None:
        return None
    return daemon


def start_dockerd(directory: Path) -> DockerDaemon:
    """Start dockerd on overlay2, falling back to vfs; skip (laptop) or fail (CI) if neither starts."""
    require("docker", "the docker CLI, Debian package docker.io")
    if os.geteuid() != 0:
        unavailable("dockerd needs root to run here")
    for driver in ("overlay2", "vfs"):
        daemon = _start(directory / driver, driver)
        if daemon is not None:
            return daemon
    unavailable(f"dockerd did not start with overlay2 or vfs; see logs in {directory}")
    raise AssertionError("unreachable")
