"""Images repo modes and image naming: where each image's tags live, and which image owns a tag.

multirepo: ``IMAGES_REPO/IMAGE_NAME:TAG``; monorepo: ``IMAGES_REPO:IMAGE_NAME-TAG``; the nameless image
(``image: ~``, given as ``None``) is ``IMAGES_REPO:TAG`` in either mode. ``auto`` resolves per
implementation (see :func:`resolve_mode`). :func:`validate` rejects the invalid combinations before
anything is pushed or deleted, with a message saying why and what to do instead. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci_env.contract import IMAGE_NAME_LABEL
from ci_env.errors import ConfigError
from ci_env.registry.implementations import Detected, Implementation, detect_implementation
from ci_env.registry.reference import RepoAddress, validate_tag

AUTO = "auto"
MONOREPO = "monorepo"
MULTIREPO = "multirepo"
MODES = (AUTO, MONOREPO, MULTIREPO)

#: How a nameless image is shown to users.
NAMELESS = "~"

REGISTRY = "registry"
REPOSITORY = "repository"


def image_label(image: str | None) -> str:
    """How an image is named in messages: its name, or ``~`` for the nameless image."""
    return NAMELESS if image is None else image


def check_mode(requested: str) -> str:
    """Return ``requested`` normalised; ConfigError listing the valid modes when it is not one."""
    mode = requested.strip().lower()
    if mode not in MODES:
        raise ConfigError(f"unknown images repo mode {requested!r}: use one of {', '.join(MODES)}")
    return mode


def address_kind(address: RepoAddress, implementation: Implementation) -> str:
    """``"registry"`` (a host, or an account/namespace where repositories are created) or ``"repository"``.

    Raises ConfigError when the path is too short or too long for the implementation (e.g. a bare
    ``docker.io``, ``docker.pkg.github.com/owner``, ``quay.io/ns/a/b``).
    """
    impl = implementation.for_address(address)
    depth = len(address.components)
    if depth < impl.min_depth:
        raise ConfigError(
            f"{address} is too short for {impl.display}: write {impl.address_help}"
        )
    if impl.max_depth is not None and depth > impl.max_depth:
        reason = "does not support nested repositories" if not impl.nested_repositories else "is too deep"
        raise ConfigError(
            f"{address} has {depth} path components but {impl.display} {reason}: write {impl.address_help}"
        )
    return REGISTRY if depth <= impl.account_depth else REPOSITORY


def resolve_mode(address: RepoAddress, implementation: Implementation, requested: str = AUTO) -> str:
    """``monorepo`` or ``multirepo``: ``requested`` when explicit, else the implementation's default.

    auto: multirepo for implementations with nested repositories; for the others the address decides:
    a registry/account address gives multirepo, a repository address gives monorepo.
    """
    mode = check_mode(requested)
    if mode != AUTO:
        return mode
    impl = implementation.for_address(address)
    if impl.nested_repositories:
        return MULTIREPO
    return MULTIREPO if address_kind(address, impl) == REGISTRY else MONOREPO


def validate(
    address: RepoAddress, implementation: Implementation, mode: str, image_names: Sequence[str | None]
) -> None:
    """Raise ConfigError for an invalid address/mode/image combination, saying why and what to do.

    Invalid: a path the implementation cannot hold; a registry (or account) address with monorepo;
    a registry address with the nameless image; a repository with multirepo where nested repositories
    are not supported; image names that cannot form a repository path (multirepo) or tag (monorepo).
    """
    impl = implementation.for_address(address)
    mode = check_mode(mode)
    if mode == AUTO:
        mode = resolve_mode(address, impl)
    kind = address_kind(address, impl)
    where = "a registry" if address.is_registry_only else "an account/namespace"
    if kind == REGISTRY and mode == MONOREPO:
        raise ConfigError(
            f"images repo {address} is {where}, not a repository: monorepo mode stores every image as a tag of "
            f"ONE repository; use a repository address (e.g. {_example_repository(address)}) or "
            "--images-repo-mode multirepo"
        )
    if kind == REGISTRY and None in image_names:
        raise ConfigError(
            f"images repo {address} is {where} and there is a nameless image (image: ~), which would need "
            f"to be stored as {address}:TAG; give the image a name, or use a repository address "
            f"(e.g. {_example_repository(address)})"
        )
    if kind == REPOSITORY and mode == MULTIREPO and not impl.nested_repositories:
        parent = address.path.rsplit("/", 1)[0]
        raise ConfigError(
            f"{impl.display} does not support nested repositories, so multirepo mode cannot store images under "
            f"repository {address}; use --images-repo-mode monorepo (IMAGES_REPO:IMAGE-TAG), or the account "
            f"{RepoAddress(address.registry, parent)} as images repo with multirepo"
        )
    seen: set[str] = set()
    for image in image_names:
        if image is None:
            continue
        if image in seen:
            raise ConfigError(f"image {image!r} is given twice: image names must be unique")
        seen.add(image)
        _check_image_name(image, mode, impl)


def full_name(address: RepoAddress, mode: str, image: str | None, tag: str) -> str:
    """The full image name ``REPO:TAG`` under which ``image`` (None: nameless) is pushed with ``tag``.

    Raises ConfigError when the resulting tag is not a valid tag (e.g. longer than 128 characters).
    """
    repo = image_repository(address, mode, image)
    return f"{repo}:{repository_tag(mode, image, tag)}"


def repository_tag(mode: str, image: str | None, tag: str) -> str:
    """The tag as stored in the image's repository: ``IMAGE-TAG`` in monorepo, else ``TAG``; validated."""
    validate_tag(tag)
    stored = f"{image}-{tag}" if mode == MONOREPO and image is not None else tag
    if stored != tag:
        validate_tag(stored, context=f"monorepo tag for image {image!r}")
    return stored


def image_repository(address: RepoAddress, mode: str, image: str | None) -> RepoAddress:
    """The repository holding ``image``'s tags: ``IMAGES_REPO/IMAGE`` in multirepo, else the images repo."""
    if mode not in (MONOREPO, MULTIREPO):
        raise ConfigError(f"images repo mode must be resolved to monorepo or multirepo, got {mode!r}")
    if mode == MULTIREPO and image is not None:
        return address.child(image)
    return address


@dataclass(frozen=True)
class TagOwner:
    """Which managed image a tag found in a repository belongs to.

    ``status``: ``"owned"`` (``image`` and ``image_tag`` set), ``"unmanaged"`` (no managed image can own
    it) or ``"ambiguous"`` (several could, and labels did not decide: never assign it).
    """

    status: str
    image: str | None = None
    image_tag: str | None = None
    candidates: tuple[str | None, ...] = ()
    reason: str = ""

    @property
    def owned(self) -> bool:
        return self.status == "owned"


def tag_owner(
    address: RepoAddress,
    mode: str,
    repository: RepoAddress,
    tag: str,
    images: Sequence[str | None],
    labels: Mapping[str, str] | None = None,
) -> TagOwner:
    """Which of ``images`` (None: nameless) owns ``tag`` found in ``repository`` under ``address``: see
    :meth:`ManagedNaming.owner`, which a caller asking about many tags builds once."""
    return ManagedNaming.of(address, mode, images).owner(repository, tag, labels)


@dataclass(frozen=True)
class ManagedNaming:
    """Where the managed images' tags live under one images repo, and which image owns a tag found there: each
    image's repository is worked out once (:func:`image_repository`), then every tag is asked about (:meth:`owner`)
    without going back to the address."""

    images: tuple[str | None, ...]
    mode: str
    #: image -> the repository holding its tags
    repository_of: Mapping[str | None, RepoAddress]

    @classmethod
    def of(cls, address: RepoAddress, mode: str, images: Sequence[str | None]) -> ManagedNaming:
        """The naming of ``images`` under ``address`` in ``mode`` (resolved: monorepo or multirepo)."""
        return cls(tuple(images), mode, {image: image_repository(address, mode, image) for image in images})

    @property
    def repositories(self) -> tuple[RepoAddress, ...]:
        """The repositories the images' tags live in, each once, in the images' order."""
        return tuple(dict.fromkeys(self.repository_of[image] for image in self.images))

    def owner(self, repository: RepoAddress, tag: str, labels: Mapping[str, str] | None = None) -> TagOwner:
        """Which managed image owns ``tag`` found in ``repository``.

        Structure first (which images could have produced this repository and tag); the image's
        ``werf-image-name`` label decides between several candidates, or vetoes a single one it contradicts.
        In monorepo, ``api`` and ``api-v2`` both match ``api-v2-x``: without a label that is ambiguous.
        """
        candidates: dict[str | None, str] = {}
        for image in self.images:
            if self.repository_of[image] != repository:
                continue
            if self.mode == MONOREPO and image is not None:
                prefix = f"{image}-"
                if tag.startswith(prefix) and len(tag) > len(prefix):
                    candidates[image] = tag[len(prefix):]
            else:
                candidates[image] = tag
        names = tuple(candidates)
        if labels is not None and IMAGE_NAME_LABEL in labels:
            labelled: str | None = labels[IMAGE_NAME_LABEL] or None
            if labelled in candidates:
                return TagOwner("owned", labelled, candidates[labelled], names, f"label {IMAGE_NAME_LABEL}")
            if labelled not in self.images:
                return TagOwner(
                    "unmanaged", candidates=names,
                    reason=f"label {IMAGE_NAME_LABEL} names {image_label(labelled)}, which is not a managed image",
                )
            return TagOwner(
                "ambiguous", candidates=names,
                reason=f"label {IMAGE_NAME_LABEL} names {image_label(labelled)}, but the tag is not where that "
                "image's tags go",
            )
        if not candidates:
            return TagOwner("unmanaged", reason="no managed image stores tags here under this name")
        if len(candidates) == 1:
            (image, image_tag), = candidates.items()
            return TagOwner("owned", image, image_tag, names, "only one managed image can produce this tag")
        return TagOwner(
            "ambiguous", candidates=names,
            reason="several managed images can produce this tag ("
            + ", ".join(image_label(c) for c in names)
            + f") and the image has no {IMAGE_NAME_LABEL} label",
        )


@dataclass(frozen=True)
class ImagesRepo:
    """An images repo fully resolved: address, implementation (and why), mode."""

    address: RepoAddress
    detected: Detected
    mode: str
    requested_mode: str

    @property
    def implementation(self) -> Implementation:
        return self.detected.implementation

    def full_name(self, image: str | None, tag: str) -> str:
        """See :func:`full_name`."""
        return full_name(self.address, self.mode, image, tag)

    def image_repository(self, image: str | None) -> RepoAddress:
        """See :func:`image_repository`."""
        return image_repository(self.address, self.mode, image)

    def naming(self, images: Sequence[str | None]) -> ManagedNaming:
        """Where ``images``' tags live here, and which of them owns a tag (see :class:`ManagedNaming`)."""
        return ManagedNaming.of(self.address, self.mode, images)


def resolve_images_repo(
    address: RepoAddress,
    env: Mapping[str, str],
    *,
    requested_mode: str = AUTO,
    implementation: str | None = None,
    implementation_source: str = "--repo-implementation",
    image_names: Sequence[str | None] = (),
) -> ImagesRepo:
    """Detect the implementation, resolve the mode and validate the images: the one call setup, build and
    cleanup make. Raises ConfigError for any invalid input."""
    requested = check_mode(requested_mode)
    detected = detect_implementation(address, env, implementation, explicit_source=implementation_source)
    mode = resolve_mode(address, detected.implementation, requested)
    validate(address, detected.implementation, mode, image_names)
    return ImagesRepo(address, detected, mode, requested)


#: The repository name of the default stages storage, below the images repo.
STAGES = "stages"


def check_stages_storage(address: RepoAddress, implementation: Implementation, source: str) -> None:
    """ConfigError unless ``address`` can hold the stages: one repository the implementation accepts.

    ``source`` names where the address came from (``-s/--stages-storage``, ``WERF_STAGES_STORAGE``, ...).
    """
    impl = implementation.for_address(address)
    try:
        kind = address_kind(address, impl)
    except ConfigError as exc:
        raise ConfigError(
            f"stages storage {address} (from {source}) is not valid: {exc.message}, or use :local"
        ) from None
    if kind == REGISTRY:
        where = "a registry" if address.is_registry_only else f"a {impl.display} account/namespace"
        raise ConfigError(
            f"stages storage {address} (from {source}) is {where}, not a repository: the stages live in ONE "
            f"repository, e.g. {address.child(STAGES)}, or use :local"
        )


def default_stages_storage(images_repo: RepoAddress, implementation: Implementation, source: str) -> RepoAddress:
    """``IMAGES_REPO/stages`` where the implementation can hold it; ConfigError saying what to pass otherwise.

    It cannot on registries without nested repositories when the images repo is already a repository
    (Docker Hub ``ACCOUNT/REPO``, Quay ``NAMESPACE/REPO``, ``docker.pkg.github.com/OWNER/PROJECT/PACKAGE``):
    no other repository is chosen silently (a new repository may be public, or shared with other projects).
    """
    impl = implementation.for_address(images_repo)
    candidate = images_repo.child(STAGES)
    try:
        check_stages_storage(candidate, impl, "the default")
    except ConfigError:
        parent, _, name = images_repo.path.rpartition("/")
        sibling = RepoAddress(images_repo.registry, f"{parent}/{name}-{STAGES}" if parent else f"{name}-{STAGES}")
        raise ConfigError(
            f"no default stages storage for images repo {images_repo} (from {source}): {impl.display} does not "
            f"support nested repositories, so {candidate} cannot exist; pass -s/--stages-storage (or set "
            f"WERF_STAGES_STORAGE) to a repository of its own, e.g. {sibling}, or :local to keep the stages "
            "in the job's Docker daemon"
        ) from None
    return candidate


# ---------------------------------------------------------------- helpers


def _example_repository(address: RepoAddress) -> str:
    return str(address.child("project"))


def _check_image_name(image: str, mode: str, impl: Implementation) -> None:
    if not image:
        raise ConfigError("empty image name: name the image, or use ~ for the nameless image")
    if mode == MULTIREPO:
        try:
            RepoAddress("x", "").child(image)
        except ConfigError:
            raise ConfigError(
                f"image name {image!r} cannot be a repository name in multirepo mode: use lower-case letters, "
                "digits and single '.', '_' or '-' separators"
            ) from None
        if "/" in image and not impl.nested_repositories:
            raise ConfigError(
                f"image name {image!r} contains '/' but {impl.display} does not support nested repositories: "
                "rename the image"
            )
    else:
        if "/" in image:
            raise ConfigError(
                f"image name {image!r} contains '/', which a tag cannot hold in monorepo mode: rename the image "
                "or use multirepo"
            )
        try:
            validate_tag(f"{image}-x")
        except ConfigError:
            raise ConfigError(
                f"image name {image!r} cannot prefix a tag in monorepo mode: use letters, digits, '_', '.' and '-'"
            ) from None
