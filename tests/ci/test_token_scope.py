"""Where CI tokens may be sent: the table of ``ci_env.ci.token_scope``."""

from __future__ import annotations

import pytest

from ci_env.ci.token_scope import may_send, withheld

GITLAB_JOB = {"CI_JOB_TOKEN": "job", "CI_SERVER_URL": "https://gitlab.example.com",
              "CI_API_V4_URL": "https://gitlab.example.com:443/api/v4", "CI_REGISTRY": "gitlab.example.com:5050"}
GITHUB_JOB = {"GITHUB_TOKEN": "ghs", "GITHUB_API_URL": "https://api.github.com", "GITHUB_SERVER_URL": "https://github.com"}
GHES_JOB = {"GITHUB_TOKEN": "ghs", "GITHUB_API_URL": "https://ghes.corp/api/v3", "GITHUB_SERVER_URL": "https://ghes.corp"}


@pytest.mark.parametrize(("env", "value", "destination", "allowed"), [
    (GITLAB_JOB, "job", "https://gitlab.example.com/api/v4", True),
    (GITLAB_JOB, "job", "gitlab.example.com:5050", True),
    (GITLAB_JOB, "job", "https://gitlab.com/api/v4", False),
    (GITLAB_JOB, "job", "registry.gitlab.com", False),
    (GITLAB_JOB, "job", "https://gitlab.example.com:8443/api/v4", False),
    (GITLAB_JOB, "glpat-other", "https://gitlab.com/api/v4", True),  # not a CI token: the user's choice
    ({"CI_JOB_TOKEN": "job"}, "job", "https://gitlab.com/api/v4", False),  # no own GitLab known: nowhere
    (GITHUB_JOB, "ghs", "https://api.github.com/user", True),
    (GITHUB_JOB, "ghs", "ghcr.io", True),
    (GITHUB_JOB, "ghs", "docker.pkg.github.com", True),
    (GITHUB_JOB, "ghs", "https://ghes.corp/api/v3", False),
    (GITHUB_JOB, "ghs", "quay.io", False),
    (GHES_JOB, "ghs", "https://ghes.corp/api/graphql", True),
    (GHES_JOB, "ghs", "containers.ghes.corp", True),
    (GHES_JOB, "ghs", "ghcr.io", False),
    (GHES_JOB, "ghs", "https://api.github.com", False),
    ({"GITHUB_TOKEN": "ghs"}, "ghs", "ghcr.io", True),  # no $GITHUB_API_URL: github.com
])
def test_ci_tokens_go_only_to_their_own_ci(env: dict[str, str], value: str, destination: str, allowed: bool) -> None:
    assert may_send(value, destination, env) is allowed


def test_reason_names_the_variable_and_hosts_never_the_value() -> None:
    reason = withheld("job", "https://gitlab.com/api/v4", GITLAB_JOB)
    assert reason == ("$CI_JOB_TOKEN is sent only to this job's GitLab (gitlab.example.com, gitlab.example.com:5050), "
                      "not to gitlab.com")
