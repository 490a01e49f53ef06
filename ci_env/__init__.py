"""ci-env: a private Docker config per CI job, registry login, exports, build-and-publish and cleanup."""

#: The one place the version is set (pyproject.toml reads it; scripts/release writes it).
__version__ = "0.4.0"
