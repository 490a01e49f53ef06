"""werf.yaml, read in one place: rendered in Jinja2's sandbox (``render``), its images (``images``) and its
``cleanup`` section (``cleanup``: the keep policies and switches), each mistake a ConfigError naming file and line."""

from ci_env.werf_config.cleanup import DEFAULT as DEFAULT_CLEANUP
from ci_env.werf_config.cleanup import CleanupConfig
from ci_env.werf_config.images import DEFAULT_CONFIG_NAMES, ImageConfig, ProjectConfig, find_config, load_project

__all__ = ["DEFAULT_CLEANUP", "DEFAULT_CONFIG_NAMES", "CleanupConfig", "ImageConfig", "ProjectConfig", "find_config",
           "load_project"]
