"""build-and-publish never writes URL credentials into image labels or its output (real daemon, real registry)."""

from __future__ import annotations

from tests.publish.conftest import Cli, RegistryFactory, RegistryReader, write_project

SECRET = "tok3n-s3cret"


def test_repository_url_credentials_never_reach_labels_or_output(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"app": {"index.html": "hi"}})
    jenkins = {"JENKINS_URL": "https://jenkins.example.com/", "BUILD_TAG": "jenkins-app-7",
               "GIT_URL": f"https://ci-user:{SECRET}@git.example.com/acme/app.git"}
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages",
                 "--tag-custom", "v1", extra_env=jenkins)
    labels = RegistryReader(registry).labels("acme/app", "v1")
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/acme/app.git"
    assert SECRET not in str(labels) and SECRET not in result.stdout + result.stderr
