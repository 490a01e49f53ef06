"""What a cleanup run works on and with: its settings, its registry clients, and its target (the images repo,
the stages storage and its record store, the managed images), resolved once before anything is listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env.cleanup import local_stages
from ci_env.errors import UsageError
from ci_env.registry.client import ClientPool

if TYPE_CHECKING:
    from ci_env.cleanup.journal import Target as JournalTarget
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.options import Credentials, RepoOptions
    from ci_env.records import CommitMetadata, RecordStore
    from ci_env.registry.naming import ImagesRepo
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.untag import RemoverContext
    from ci_env.werf_config.cleanup import CleanupConfig


@dataclass(frozen=True)
class Settings:
    """How to run: the git directory, history synchronisation, parallelism, dry run."""

    directory: Path
    synchronize: bool = False
    dry_run: bool = False
    parallel: int = 8
    docker_config: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    git_history_based: bool = True  #: content-signature tags decided by the keep policies (werf's default)
    git_history_strict: bool = False  #: ... and those without a metadata record removed, not kept
    cleanup: CleanupConfig | None = None  #: werf.yaml's cleanup section (None: werf's defaults)
    #: leave the signatures, attestations and other referrers of removed images (``--keep-signatures``)
    keep_signatures: bool = False
    #: also remove the untagged manifests nothing kept reaches (``--delete-untagged``)
    delete_untagged: bool = False
    #: also read every kept manifest, so the bytes freed are exact (``--measure-kept``)
    measure_kept: bool = False


class Clients(ClientPool):
    """The pool of cleanup's registry clients (one per host), made from its Settings: listing, records and
    removal share them, so the removal starts from the tag maps the listing built."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        super().__init__(settings.docker_config, settings.insecure_registries, env)
        self.settings = settings

    def context(self, credentials: Credentials | None) -> RemoverContext:
        """What a registry implementation's remover or tag listing is built from: these clients, the Docker config,
        insecure registries and environment they were made with, and ``credentials`` (one scope's)."""
        from ci_env.registry.untag import RemoverContext

        return RemoverContext(docker_config=self.settings.docker_config,
                              insecure_registries=self.settings.insecure_registries, env=self.env,
                              credentials=credentials, clients=self)


@dataclass(frozen=True)
class Target:
    """The resolved repositories and the record store."""

    images_repo: ImagesRepo
    stages: RepoAddress | None
    stages_local: bool
    store: RecordStore
    managed: tuple[str | None, ...]
    project: str = ""  #: the werf.yaml project name (read for ``:local`` only)
    #: the metadata records, read before the managed images (see ``ci_env.cleanup.metadata``); None: read them
    #: when needed
    metadata: tuple[CommitMetadata, ...] | None = None

    def metadata_records(self) -> tuple[CommitMetadata, ...]:
        """The metadata records read with the managed images, else read now."""
        from ci_env import records

        return self.metadata if self.metadata is not None else tuple(records.read_metadata(self.store))


def resolve_target(options: RepoOptions, env: Mapping[str, str], clients: Clients, directory: Path) -> Target:
    """Check the repo options and open the record store; UsageError/ConfigError saying what to set."""
    from ci_env import records
    from ci_env.registry.naming import resolve_images_repo

    if options.images_repo is None:
        raise UsageError("no images repo: pass -i/--images-repo ADDRESS or set WERF_IMAGES_REPO")
    if options.stages_storage is None and not options.stages_storage_local:
        raise UsageError(
            "no stages storage: pass -s/--stages-storage ADDRESS (or :local) or set WERF_STAGES_STORAGE; "
            "cleanup reads the publication records and managed images kept there"
        )
    options.check_stages_storage(env)
    project = ""
    if options.stages_storage_local:
        from ci_env.werf_config import load_project

        project = load_project(directory, None, env).project
        store = records.open_store(None, project, env=env)
    else:
        assert options.stages_storage is not None
        store = records.open_store(options.stages_storage, "", client=clients(options.stages_storage), env=env)
    metadata = tuple(records.read_metadata(store))  # first: one listing with the managed images (a registry store)
    managed = tuple(records.list_managed_images(store))
    impl = options.images_repo_implementation
    images_repo = resolve_images_repo(
        options.images_repo, env, requested_mode=options.images_repo_mode,
        implementation=impl.value if impl else None,
        implementation_source=impl.source if impl else "--repo-implementation",
        image_names=managed,
    )
    return Target(images_repo, options.stages_storage, options.stages_storage_local, store, managed, project,
                  metadata)


@dataclass(frozen=True)
class Run:
    """One cleanup or purge run: the command, what it works on (``target``) and with (``clients``, ``settings``,
    ``env``, each repository's ``credentials`` by scope, ``images-repo`` / ``stages-storage``), when it started,
    and its time ``budget`` (None: none)."""

    command: str
    target: Target
    clients: Clients
    settings: Settings
    env: Mapping[str, str]
    credentials: Mapping[str, Credentials]
    started: str = ""
    budget: TimeBudget | None = None


def journal_target(command: str, target: Target) -> JournalTarget:
    """What the journal of this run is for (a journal of another images repo or command is never used)."""
    from ci_env.cleanup.journal import Target as JournalTarget

    stages = ":local" if target.stages_local else (str(target.stages) if target.stages else None)
    return JournalTarget(command, str(target.images_repo.address), stages)


NO_DAEMON = (
    "the local Docker daemon cannot be reached (DOCKER_HOST or the default socket), so the :local stages "
    "were not cleaned: run cleanup where the builds ran"
)


def local_stages_of(target: Target, env: Mapping[str, str]) -> local_stages.LocalStages | None:
    api = local_stages.connect(env)
    return None if api is None else local_stages.LocalStages(api, target.project)


def now_text() -> str:
    """The current time as the report writes it (UTC, to the second, ``Z``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
