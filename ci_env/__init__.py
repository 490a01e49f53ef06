"""ci-env: a private Docker config per CI job, registry login, exports, build-and-publish and cleanup."""

__version__ = "0.1.0"
