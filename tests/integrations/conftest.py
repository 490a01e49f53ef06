"""Fixtures for the GitHub Action, GitLab template and installer tests: an offline wheelhouse of ci-env,
the zipapp built from it, and the installer script."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.integrations.wheelhouse import build_wheelhouse
from tests.services.tls import self_signed, server_context

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "scripts" / "install-ci-env"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the ci-env wheel of this checkout and every wheel it needs with [docker]."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    build_wheelhouse(ROOT, directory, extras=("docker",))
    return directory


@pytest.fixture(scope="session")
def ci_env_wheel(wheelhouse: Path) -> Path:
    """The ci-env wheel built from this checkout."""
    return next(wheelhouse.glob("ci_env-*.whl"))


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, ci_env_wheel: Path) -> Path:
    """ci-env.pyz built by scripts/build-zipapp from the wheelhouse (offline, for this Python)."""
    output = tmp_path_factory.mktemp("zipapp") / "ci-env.pyz"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-zipapp"), "-o", str(output), "--wheel", str(ci_env_wheel),
         "--resolve", "--python-version", version, "--", "--no-index", "--find-links", str(wheelhouse)],
        check=True, capture_output=True,
    )
    return output


@pytest.fixture
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, Path]]:
    """An HTTPS server (a private CA's certificate, trusted through SSL_CERT_FILE) and that CA file."""
    certificate = self_signed(tmp_path_factory.mktemp("tls"), ["localhost"])
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context(certificate))
    server.start()
    yield server, certificate.cert
    server.clear()
    if server.is_running():
        server.stop()
