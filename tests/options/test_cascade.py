"""The one options cascade and the one boolean parser: every value resolved once, with its source, in the order
option > scoped variable > unscoped variable > CI default > built-in default; every true/false word accepted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci_env.boolean import FALSE_WORDS, TRUE_WORDS, boolean_word, parse_boolean
from ci_env.ci import detect
from ci_env.ci.vars import is_true
from ci_env.commands.build_publish import bool_flag_or_env
from ci_env.errors import CiEnvError, ConfigError
from ci_env.options import cascade, resolve_credentials, resolve_setup
from ci_env.registry.insecure import ALL, from_env
from tests.ci.test_detect import GITHUB, GITLAB
from tests.cli import run_ci_env

#: Every word one of the four parsers accepted before there was one (options, build-and-publish,
#: WERF_INSECURE_REGISTRY: 1/true/yes/on and 0/false/no/off, any case; CI markers: true/1/yes).
TRUE_BEFORE = ("1", "true", "yes", "on", "TRUE", "True", "Yes", "ON", " true ")
FALSE_BEFORE = ("0", "false", "no", "off", "FALSE", "False", "No", "OFF", " off ")


@pytest.mark.parametrize("word", TRUE_BEFORE)
def test_every_true_word_accepted_before_is_true_everywhere(word: str) -> None:
    assert parse_boolean(word) is True
    assert bool_flag_or_env(False, {"WERF_TAG_BY_STAGES_SIGNATURE": word}, "WERF_TAG_BY_STAGES_SIGNATURE") is True
    assert from_env({"WERF_INSECURE_REGISTRY": word}) == (ALL,)
    assert is_true({"GITLAB_CI": word}, "GITLAB_CI")


@pytest.mark.parametrize("word", FALSE_BEFORE)
def test_every_false_word_accepted_before_is_false_everywhere(word: str) -> None:
    assert parse_boolean(word) is False
    assert bool_flag_or_env(False, {"WERF_TAG_BY_STAGES_SIGNATURE": word}, "WERF_TAG_BY_STAGES_SIGNATURE") is False
    assert from_env({"WERF_INSECURE_REGISTRY": word}) == ()
    assert not is_true({"GITLAB_CI": word}, "GITLAB_CI")


def test_the_words_are_werfs_and_on_off() -> None:
    assert {"1", "true", "yes", "on"} == TRUE_WORDS and {"0", "false", "no", "off"} == FALSE_WORDS
    assert boolean_word("") is None and boolean_word("maybe") is None


@pytest.mark.parametrize("bad", ["maybe", "2", "y", "enabled"])
def test_a_bad_boolean_is_an_error_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"^'{bad}' is not a boolean: use true or false$"):
        parse_boolean(bad)
    with pytest.raises(CiEnvError, match=f"^WERF_TAG_BY_STAGES_SIGNATURE: '{bad}' is not a boolean") as caught:
        bool_flag_or_env(False, {"WERF_TAG_BY_STAGES_SIGNATURE": bad}, "WERF_TAG_BY_STAGES_SIGNATURE")
    assert caught.value.exit_code == 2


def test_a_bad_boolean_variable_stops_setup_with_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WERF_TMP_DIR": str(tmp_path / "jobs"),
           "WERF_TAG_BY_STAGES_SIGNATURE": "maybe"}
    result = run_ci_env("setup", env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr == ("ci-env: error: WERF_TAG_BY_STAGES_SIGNATURE: 'maybe' is not a boolean: "
                             "use true or false\n")
    assert not (tmp_path / "jobs").exists() or not any((tmp_path / "jobs").iterdir())


def test_cascade_order_and_sources() -> None:
    def pick(flags: dict[str, str | None], env: dict[str, str]) -> tuple[str, str] | None:
        found = cascade(flags, env, "--images-repo", ("WERF_IMAGES_REPO_SCOPED", "WERF_IMAGES_REPO"),
                        ci_default=("ci.example/app", "CI_REGISTRY_IMAGE"), default="built.in/app")
        return (found.value, found.source) if found else None

    both = {"WERF_IMAGES_REPO_SCOPED": "scoped.example/app", "WERF_IMAGES_REPO": "plain.example/app"}
    assert pick({"images_repo": "opt.example/app"}, both) == ("opt.example/app", "--images-repo")
    assert pick({"images_repo": None}, both) == ("scoped.example/app", "WERF_IMAGES_REPO_SCOPED")
    assert pick({}, {"WERF_IMAGES_REPO": "plain.example/app"}) == ("plain.example/app", "WERF_IMAGES_REPO")
    assert pick({"images_repo": ""}, {"WERF_IMAGES_REPO_SCOPED": ""}) == ("ci.example/app", "CI_REGISTRY_IMAGE")
    assert cascade({}, {}, "--images-repo", default="built.in/app") is not None
    assert cascade({}, {}, "--images-repo") is None


def test_a_scoped_credential_beats_the_common_one_and_says_where_it_came_from() -> None:
    env = {"WERF_IMAGES_REPO_DOCKER_HUB_TOKEN": "scoped", "WERF_REPO_DOCKER_HUB_TOKEN": "common"}
    images = resolve_credentials("images-repo", {}, env)
    stages = resolve_credentials("stages-storage", {}, env)
    assert (images.get("docker-hub-token"), images.source("docker-hub-token")) == (
        "scoped", "WERF_IMAGES_REPO_DOCKER_HUB_TOKEN")
    assert (stages.get("docker-hub-token"), stages.source("docker-hub-token")) == (
        "common", "WERF_REPO_DOCKER_HUB_TOKEN")
    assert "scoped" not in repr(images) and "common" not in repr(stages)


@pytest.mark.parametrize(
    ("flags", "env", "override", "images", "stages", "mode"),
    [
        ({}, {}, False, ("registry.gitlab.com/group/project", "CI_REGISTRY_IMAGE"),
         ("registry.gitlab.com/group/project/stages", "the default"), ("auto", "default")),
        ({}, {"WERF_IMAGES_REPO": "registry.gitlab.com/group/other", "WERF_IMAGES_REPO_MODE": "monorepo"}, False,
         ("registry.gitlab.com/group/other", "WERF_IMAGES_REPO"),
         ("registry.gitlab.com/group/other/stages", "the default"), ("monorepo", "WERF_IMAGES_REPO_MODE")),
        ({"images_repo": "quay.io/acme/app", "stages_storage": ":local"},
         {"WERF_IMAGES_REPO": "registry.gitlab.com/group/other"}, False,
         ("quay.io/acme/app", "--images-repo"), (":local", "--stages-storage"), ("auto", "default")),
        ({}, {"WERF_IMAGES_REPO": "registry.gitlab.com/group/other", "WERF_STAGES_STORAGE": ":local"}, True,
         ("registry.gitlab.com/group/project", "CI_REGISTRY_IMAGE"),
         ("registry.gitlab.com/group/project/stages", "the default"), ("auto", "default")),
    ],
)
def test_setup_settings_keep_the_source_of_each_value(
    flags: dict[str, str], env: dict[str, str], override: bool, images: tuple[str, str], stages: tuple[str, str],
    mode: tuple[str, str],
) -> None:
    job = {**GITLAB, **env}
    settings = resolve_setup(flags, job, detect(job), override=override)
    assert settings.images_repo is not None and settings.stages_storage is not None
    assert (settings.images_repo.value, settings.images_repo.source) == images
    assert (settings.stages_storage.value, settings.stages_storage.source) == stages
    assert (settings.images_repo_mode.value, settings.images_repo_mode.source) == mode


def test_an_option_that_rode_into_ci_detection_is_now_the_setting_that_chooses_the_login() -> None:
    legacy = "docker.pkg.github.com/octo-org/hello-world/app"
    facts = detect(GITHUB)
    settings = resolve_setup({"images_repo": legacy, "stages_storage": ":local"}, GITHUB, facts)
    assert [login.registry for login in facts.logins_for(settings.login_registries)] == [
        "ghcr.io", "docker.pkg.github.com"]
    plain = resolve_setup({}, GITHUB, facts)
    assert [login.registry for login in facts.logins_for(plain.login_registries)] == ["ghcr.io"]


def test_setup_verbose_says_where_each_value_came_from(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WERF_TMP_DIR": str(tmp_path / "jobs"),
           "WERF_IMAGES_REPO": "registry.example.com/group/app", "WERF_IMAGES_REPO_MODE": "monorepo"}
    result = run_ci_env("setup", "-v", "--no-login", "--tagging-strategy", "stages-signature", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ("ci-env: images repo registry.example.com/group/app (from WERF_IMAGES_REPO); stages storage "
            "registry.example.com/group/app/stages (from the default); images repo mode monorepo "
            "(from WERF_IMAGES_REPO_MODE); tagging strategy stages-signature (from --tagging-strategy)\n"
            ) in result.stderr
