"""build-and-publish: build each werf.yaml image once, publish it under every requested tag.

Per image: content signature -> stages storage lookup -> reuse (no build, no layer upload:
the image is only retagged on the registry) or build with the docker SDK -> ONE push ->
the other tags added on the registry (``RegistryClient.retag``, cross-repository mounts) ->
one publication record per tag and the image added to the managed images
(:mod:`ci_env.records`).

Everything that can be checked is checked before the first build (:func:`plan`): the
images repo, its mode and the image names (:mod:`ci_env.registry.naming`), the stages
storage, every tag. A failed image does not stop the others; the ones published stay
published and are reported.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env import records
from ci_env.ci.facts import JobFacts
from ci_env.contract import (
    CREATED_LABEL,
    CUSTOM,
    GIT_BRANCH,
    GIT_COMMIT,
    GIT_TAG,
    IMAGE_LABEL,
    IMAGE_NAME_LABEL,
    IMAGE_TAG_LABEL,
    LOCAL_STAGES_REPOSITORY,
    REVISION_LABEL,
    SIGNATURE_LABEL,
    SOURCE_LABEL,
    STAGES_SIGNATURE,
    STRATEGY_LABEL,
)
from ci_env.docker_daemon import Docker
from ci_env.errors import BuildError, CiEnvError, UsageError
from ci_env.output import Output, format_duration, plural
from ci_env.redact import strip_userinfo
from ci_env.registry.reference import RepoAddress, validate_tag
from ci_env.signature import content_signature
from ci_env.tagging import docker_tag
from ci_env.werf_config import ImageConfig, ProjectConfig

if TYPE_CHECKING:
    from ci_env.registry.client import ClientPool
    from ci_env.registry.naming import ImagesRepo


BUILT = "built"
REUSED = "reused"
FAILED = "failed"



@dataclass(frozen=True)
class TagRequest:
    """One requested tag: the strategy and the value as given (a branch name, a commit, ...).

    ``value`` is None for ``stages-signature`` (the tag is each image's signature).
    """

    strategy: str
    value: str | None

    def tag_for(self, signature: str) -> str:
        """The docker tag: the value (branch/tag names made valid), or the signature."""
        if self.value is None:
            return signature
        if self.strategy in (GIT_BRANCH, GIT_TAG):
            return docker_tag(self.value)
        return self.value


def tag_requests(
    custom: Sequence[str] = (),
    git_branch: str | None = None,
    git_tag: str | None = None,
    git_commit: str | None = None,
    by_signature: bool = False,
) -> tuple[TagRequest, ...]:
    """The tags to publish, checked: custom and commit tags must be valid docker tags (ConfigError);
    branch and git tag names are made valid (``tagging.docker_tag``). UsageError when there is none."""
    result: list[TagRequest] = []
    for value in custom:
        validate_tag(value, context="--tag-custom")
        result.append(TagRequest(CUSTOM, value))
    if git_branch:
        result.append(TagRequest(GIT_BRANCH, git_branch))
    if git_tag:
        result.append(TagRequest(GIT_TAG, git_tag))
    if git_commit:
        validate_tag(git_commit, context="--tag-git-commit")
        result.append(TagRequest(GIT_COMMIT, git_commit))
    if by_signature:
        result.append(TagRequest(STAGES_SIGNATURE, None))
    if not result:
        raise UsageError(
            "no tag to publish: give at least one of --tag-custom, --tag-git-branch, --tag-git-tag, "
            "--tag-git-commit, --tag-by-stages-signature (or their WERF_TAG_* variables, which ci-env setup exports)"
        )
    unique = list(dict.fromkeys(result))
    return tuple(unique)


@dataclass(frozen=True)
class PublishTarget:
    """One tag of one image: where it goes and what its record says."""

    request: TagRequest
    tag: str
    repository: RepoAddress
    stored_tag: str

    @property
    def full_name(self) -> str:
        return f"{self.repository}:{self.stored_tag}"


@dataclass(frozen=True)
class ImagePlan:
    """An image, its signature and every tag it will be published under (same repository)."""

    image: ImageConfig
    signature: str
    targets: tuple[PublishTarget, ...]

    @property
    def label(self) -> str:
        return self.image.display_name

    @property
    def repository(self) -> RepoAddress:
        return self.targets[0].repository


@dataclass(frozen=True)
class Settings:
    """Everything build-and-publish needs, resolved and validated."""

    project: ProjectConfig
    images_repo: ImagesRepo
    stages: RepoAddress | None  #: None = ``:local``
    tags: tuple[TagRequest, ...]
    facts: JobFacts
    docker_config: Path
    env: Mapping[str, str] = field(repr=False, default_factory=dict)
    parallel: int = 1
    insecure_registries: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageResult:
    """The outcome for one image, as the closing table shows it."""

    image: str
    full_names: tuple[str, ...]
    outcome: str
    seconds: float
    digest: str | None = None
    error: str | None = None


def plan(settings: Settings) -> list[ImagePlan]:
    """Signatures and full names of every image; ConfigError (before any build) when a name is invalid."""
    from ci_env.registry.naming import repository_tag

    result = []
    for image in settings.project.images:
        signature = content_signature(image.name, image.context, image.dockerfile, image.args, image.target)
        repository = settings.images_repo.image_repository(image.name)
        targets: dict[str, PublishTarget] = {}
        for request in settings.tags:
            tag = request.tag_for(signature)
            stored = repository_tag(settings.images_repo.mode, image.name, tag)
            targets.setdefault(stored, PublishTarget(request, tag, repository, stored))  # first strategy wins
        result.append(ImagePlan(image, signature, tuple(targets.values())))
    return result


class Publisher:
    """Runs the publication of planned images; one instance per command run."""

    def __init__(self, settings: Settings, output: Output, docker: Docker | None = None) -> None:
        self.settings = settings
        self.output = output
        self.docker = docker or Docker(settings.env, settings.docker_config)
        from ci_env.registry.client import ClientPool

        self.clients: ClientPool = ClientPool(settings.docker_config, settings.insecure_registries, settings.env)
        self._store: records.RecordStore | None = None

    @property
    def store(self) -> records.RecordStore:
        """The record store of the stages storage, opened on first use."""
        if self._store is None:
            stages = self.settings.stages
            client = self.clients(stages) if stages is not None else None
            self._store = records.open_store(stages, self.settings.project.project, client=client,
                                             env=self.settings.env)
        return self._store

    def labels(self, plan: ImagePlan) -> dict[str, str]:
        """The labels of a newly built image (the first tag's strategy and tag; OCI source and revision, see
        :attr:`source`)."""
        first = plan.targets[0]
        labels = {
            IMAGE_LABEL: "true",
            IMAGE_NAME_LABEL: plan.image.name or "",
            STRATEGY_LABEL: first.request.strategy,
            IMAGE_TAG_LABEL: first.tag,
            SIGNATURE_LABEL: plan.signature,
            CREATED_LABEL: records.utc_now(),
        }
        source, revision = self.source
        if source:
            labels[SOURCE_LABEL] = source
        if revision:
            labels[REVISION_LABEL] = revision
        return labels

    @functools.cached_property
    def source(self) -> tuple[str | None, str | None]:
        """(source URL, revision) for the OCI labels: the CI's (``--tag-git-commit`` first for the revision),
        else the project clone's ``origin`` (as a web URL without credentials) and ``HEAD``."""
        from ci_env import gitsource

        facts = self.settings.facts
        directory = self.settings.project.directory
        source = strip_userinfo(facts.project_url) if facts.project_url else gitsource.origin_url(directory)
        revision = self._git_value(GIT_COMMIT) or facts.commit or gitsource.resolve_commit(directory)
        return source, revision

    def _git_value(self, strategy: str) -> str | None:
        for request in self.settings.tags:
            if request.strategy == strategy:
                return request.value
        return None

    def _git_ref(self, strategy: str, fact: str | None) -> str | None:
        """The original ref name: the CI's when the given value is its tag form, else the given value."""
        given = self._git_value(strategy)
        if given is None:
            return fact
        if fact and docker_tag(fact) == given:
            return fact
        return given

    def run(self, plans: Sequence[ImagePlan]) -> list[ImageResult]:
        """Publish every planned image (``parallel`` at a time); one result per image, failures included."""
        try:
            if self.settings.parallel <= 1 or len(plans) <= 1:
                return [self.publish_one(plan) for plan in plans]
            with ThreadPoolExecutor(max_workers=self.settings.parallel) as pool:
                return list(pool.map(self.publish_one, plans))
        finally:
            self.clients.close()

    def publish_one(self, plan: ImagePlan) -> ImageResult:
        """Publish one image; a failure is returned (with the daemon's/registry's message), not raised."""
        started = time.monotonic()
        names = tuple(t.full_name for t in plan.targets)
        self.output.status(f"[{plan.label}] start: signature {plan.signature[:12]}, {plural(len(names), 'tag')}")
        try:
            with self.output.section(f"image {plan.label}: build and publish", f"image_{plan.label}") as section:
                outcome, digest = self._publish(plan, section.line)
        except CiEnvError as exc:
            seconds = time.monotonic() - started
            self.output.status(f"[{plan.label}] FAILED after {format_duration(seconds)}: {exc.message}")
            return ImageResult(plan.label, names, FAILED, seconds, error=exc.message)
        seconds = time.monotonic() - started
        more = f" (+{plural(len(names) - 1, 'tag')})" if len(names) > 1 else ""
        self.output.status(f"[{plan.label}] {outcome} and published in {format_duration(seconds)}: {names[0]}{more}")
        return ImageResult(plan.label, names, outcome, seconds, digest)

    # ---------------------------------------------------------------- the flow

    def _publish(self, plan: ImagePlan, log: Callable[[str], None]) -> tuple[str, str]:
        """Build or reuse the image, write its records, then put it under its tags: (outcome, digest).

        The records are written before the tags they describe (where the image reaches the images repo by a push,
        its tags are put again from its digest after the records): a cleanup that lists the records right before
        removing (``ci_env.cleanup.pipeline``) then always finds the record of a tag published again with the
        same image, and a removal that came before the record is undone by the tags put after it."""
        stages = self.settings.stages
        if stages is None:
            return self._publish_local(plan, log)
        return self._publish_via_repository(plan, stages, log)

    def _publish_via_repository(self, plan: ImagePlan, stages: RepoAddress, log: Callable[[str], None]) -> tuple[
        str, str
    ]:
        client = self.clients(stages)
        stage_name = f"{stages}:{plan.signature}"
        existing = client.resolve(stages.path, plan.signature)
        outcome = REUSED
        stage_digest = existing.digest if existing is not None else None
        if existing is None:
            outcome = BUILT
            log(f"no stage {stage_name}: building")
            self.docker.build(plan.image, [stage_name], self.labels(plan), log)
            stage_digest = self.docker.push(stage_name, stages.registry, plan.label, log)
        else:
            log(f"stage {stage_name} exists ({existing.digest}): reusing it, no build")
        repository = plan.repository
        tags = [t.stored_tag for t in plan.targets]
        if repository.api_host() == stages.api_host():
            if stage_digest is None:
                resolved = client.resolve(stages.path, plan.signature)
                if resolved is None:
                    raise BuildError(f"image {plan.label}: {stage_name} is missing on the registry after the push")
                stage_digest = resolved.digest
            self._record(plan, stage_digest)  # a tag gets the stage's manifest as it is: the same digest
            info = self.clients(repository).retag(stages.path, stage_digest, repository.path, tags)
            log(f"tagged {', '.join(t.full_name for t in plan.targets)} ({info.digest})")
            return outcome, info.digest
        if outcome == REUSED:
            self.docker.pull(stage_name, stages.registry, plan.label)
        first = plan.targets[0].full_name
        self.docker.tag(stage_name, first)
        return outcome, self._push_and_retag(plan, log)

    def _publish_local(self, plan: ImagePlan, log: Callable[[str], None]) -> tuple[str, str]:
        local_name = f"{LOCAL_STAGES_REPOSITORY}/{self.settings.project.project}:{plan.signature}"
        existing = self.docker.find_by_signature(plan.signature)
        first = plan.targets[0].full_name
        if existing is None:
            log(f"no local image labelled {SIGNATURE_LABEL}={plan.signature}: building")
            self.docker.build(plan.image, [local_name, first], self.labels(plan), log)
            outcome = BUILT
        else:
            log(f"local image {existing[:19]} has signature {plan.signature[:12]}: reusing it, no build")
            self.docker.tag(existing, local_name)
            self.docker.tag(existing, first)
            outcome = REUSED
        return outcome, self._push_and_retag(plan, log)

    def _push_and_retag(self, plan: ImagePlan, log: Callable[[str], None]) -> str:
        first = plan.targets[0]
        repository = plan.repository
        digest = self.docker.push(first.full_name, repository.registry, plan.label, log)
        client = self.clients(repository)
        if digest is None:
            resolved = client.resolve(repository.path, first.stored_tag)
            if resolved is None:
                raise BuildError(f"image {plan.label}: {first.full_name} is missing on the registry after the push")
            digest = resolved.digest
        self._record(plan, digest)
        # every tag put (again) after its record: the push's tag may have been removed by a cleanup that listed
        # the records before this one was written
        return client.retag(repository.path, digest, repository.path, [t.stored_tag for t in plan.targets]).digest

    def _record(self, plan: ImagePlan, digest: str) -> None:
        facts = self.settings.facts
        now = records.utc_now()
        branch = self._git_ref(GIT_BRANCH, facts.branch)
        git_tag = self._git_ref(GIT_TAG, facts.tag)
        commit = self._git_value(GIT_COMMIT) or facts.commit
        for target in plan.targets:
            records.write_publication(self.store, records.Publication(
                image=plan.image.name, tag=target.tag, repository=str(target.repository),
                stored_tag=target.stored_tag, strategy=target.request.strategy, digest=digest,
                signature=plan.signature, published_at=now, git_branch=branch, git_tag=git_tag, git_commit=commit,
            ))
        records.add_managed_image(self.store, plan.image.name)
        if self.commit_id is not None:
            records.write_metadata(self.store, records.CommitMetadata(plan.image.name, self.commit_id, plan.signature,
                                                                      now))

    @functools.cached_property
    def commit_id(self) -> str | None:
        """The full id of the commit this run publishes from (``--tag-git-commit``'s, the CI's, else the
        project's HEAD), for the metadata records; None outside git."""
        from ci_env.gitsource import resolve_commit

        given = self._git_value(GIT_COMMIT) or self.settings.facts.commit
        directory = self.settings.project.directory
        resolved = resolve_commit(directory, given) if given else resolve_commit(directory)
        if resolved is None and given and re.fullmatch(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", given):
            return given.lower()  # a CI's full commit id, checked out elsewhere
        return resolved


def publish(settings: Settings, output: Output, docker: Docker | None = None) -> list[ImageResult]:
    """Plan (validating everything), then publish every image; prints status lines and the closing table.

    Raises BuildError naming every failed image after the others were published; the published ones
    are in the table.
    """
    plans = plan(settings)
    output.status(
        f"publishing {plural(len(plans), 'image')} of project {settings.project.project} to "
        f"{settings.images_repo.address} "
        f"({settings.images_repo.mode}), stages in {settings.stages or records_local_label(settings)}"
    )
    results = Publisher(settings, output, docker).run(plans)
    output.table(
        ("image", "full name", "digest", "result", "time"),
        [_row(result, name) for result in results for name in result.full_names],
    )
    failed = [r for r in results if r.outcome == FAILED]
    if failed:
        published = [r.image for r in results if r.outcome != FAILED]
        kept = f"; published: {', '.join(published)}" if published else ""
        raise BuildError(
            "; ".join(str(r.error) for r in failed) + kept
        )
    return results


def records_local_label(settings: Settings) -> str:
    """``:local (DIRECTORY)``: how the status line names a ``:local`` stages storage and where its records are."""
    return f":local ({records.state_directory(settings.project.project, settings.env)})"


def _row(result: ImageResult, name: str) -> list[str]:
    digest = result.digest or "-"
    return [result.image, name, digest, result.outcome, format_duration(result.seconds)]
