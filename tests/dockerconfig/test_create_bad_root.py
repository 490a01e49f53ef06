"""create_job_dir with a tmp root it cannot use: ConfigError, never an OSError traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_env.ci.facts import JobFacts
from ci_env.configjson import BaseConfig
from ci_env.dockerconfig import create_job_dir, resolve_base
from ci_env.errors import ConfigError


def test_tmp_root_with_a_name_too_long_is_a_config_error(tmp_path: Path) -> None:
    root = tmp_path / ("a" * 5000)
    with pytest.raises(ConfigError, match=r"cannot create a directory in .*: File name too long; set --tmp-dir"):
        create_job_dir(BaseConfig(None), root, "gitlab-1", [])
    assert list(tmp_path.iterdir()) == []


def test_tmp_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("")
    with pytest.raises(ConfigError, match="is not a directory; set --tmp-dir or"):
        create_job_dir(BaseConfig(None), root, "gitlab-1", [])


def test_base_docker_config_with_a_name_too_long_is_a_config_error(tmp_path: Path) -> None:
    facts = JobFacts(family="gitlab", system="gitlab")
    expected = r"cannot use the Docker config .* \(from --docker-config\): File name too long"
    with pytest.raises(ConfigError, match=expected):
        resolve_base(str(tmp_path / ("a" * 5000)), {}, facts)
