"""Where each vendor API is reached: defaults, CI variables and explicit overrides."""

from __future__ import annotations

from ci_env.registry.vendors import endpoints


def test_github_api_precedence_and_enterprise_graphql() -> None:
    assert endpoints.github_api({}) == "https://api.github.com"
    assert endpoints.github_graphql({}) == "https://api.github.com/graphql"
    ghes = {"GITHUB_API_URL": "https://git.example.com/api/v3"}
    assert endpoints.github_api(ghes) == "https://git.example.com/api/v3"
    assert endpoints.github_graphql(ghes) == "https://git.example.com/api/graphql"
    assert endpoints.github_api({**ghes, "WERF_GITHUB_API_URL": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"


def test_gitlab_api_from_ci_or_registry_host() -> None:
    assert endpoints.gitlab_api("registry.gitlab.com", {}) == "https://gitlab.com/api/v4"
    assert endpoints.gitlab_api("gitlab.example.com:5050", {}) == "https://gitlab.example.com/api/v4"
    ci = {"GITLAB_CI": "true", "CI_REGISTRY": "gitlab.example.com:5050", "CI_API_V4_URL": "https://gl.example/api/v4"}
    assert endpoints.gitlab_api("gitlab.example.com:5050", ci) == "https://gl.example/api/v4"
    assert endpoints.gitlab_api("registry.gitlab.com", ci) == "https://gitlab.com/api/v4"  # not the job's registry
    assert endpoints.gitlab_api("x", {"WERF_GITLAB_API_URL": "http://127.0.0.1:1/api/v4"}) == "http://127.0.0.1:1/api/v4"


def test_registry_hosted_apis_and_cloud_endpoints() -> None:
    assert endpoints.harbor_api("harbor.example.com", {}) == "https://harbor.example.com/api/v2.0"
    assert endpoints.quay_api("quay.io", {"WERF_QUAY_API_URL": "http://127.0.0.1:5/"}) == "http://127.0.0.1:5/api/v1"
    assert endpoints.acr_api("myreg.azurecr.io", {}) == "https://myreg.azurecr.io"
    assert endpoints.docker_hub_api({}) == "https://hub.docker.com"
    host = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    assert endpoints.ecr_region(host, {"AWS_REGION": "us-east-1"}) == "eu-central-1"
    assert endpoints.ecr_account(host) == "123456789012"
    assert endpoints.ecr_endpoint({"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_ECR": "http://b"}) == "http://b"
    assert endpoints.azure_authority({"AZURE_AUTHORITY_HOST": "login.example"}) == "https://login.example"
