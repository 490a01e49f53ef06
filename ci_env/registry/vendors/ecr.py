"""AWS ECR: remove tags with the AWS SDK (boto3, imported only when used).

``batch_delete_image(imageIds=[{"imageTag": TAG}, ...])`` removes only those tags (an image goes
away with its last tag), at most 100 ids per call, reporting per-item failures. Region and account
come from the registry host (``ACCOUNT.dkr.ecr.REGION.amazonaws.com``); the endpoint honours
``$AWS_ENDPOINT_URL_ECR`` / ``$AWS_ENDPOINT_URL``; credentials are the SDK's usual chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or task role).

Listing: ``describe_images`` (paginated, tagged images only) gives every tag with its digest, manifest
media type and push time in one listing, without reading manifests; cleanup by rules lists every image
(``tagStatus`` ANY), so the untagged ones come with their push times in the same listing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ci_env.errors import AuthError, CiEnvError, PreflightError, RegistryError
from ci_env.registry.outcomes import Status
from ci_env.registry.untag import Capabilities
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import VendorContext, preflight_failure

if TYPE_CHECKING:
    from ci_env.registry.client import TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "AWS ECR"
BATCH_SIZE = 100
CREDENTIALS_HELP = (
    "give the job AWS credentials allowed ecr:BatchDeleteImage (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE, or a role)"
)
_AUTH_CODES = frozenset({"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                         "ExpiredTokenException", "AccessDenied"})
_ABSENT_CODES = frozenset({"ImageNotFound"})
LIST_HELP = (
    "give the job AWS credentials allowed ecr:DescribeImages (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE, or a role)"
)
#: images per ``describe_images`` page (ECR's maximum)
LIST_PAGE_SIZE = 1000


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def _utc(when: Any) -> str:
    """``when`` (a datetime from boto3) as ISO 8601 UTC, e.g. ``2024-05-01T12:00:00Z``."""
    from datetime import datetime, timezone

    if not isinstance(when, datetime):
        return str(when)
    aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _sdk_missing(error: ModuleNotFoundError) -> RegistryError:
    """The error of an ECR call without the AWS SDK: what is missing and what to install."""
    missing = (error.name or "boto3").split(".")[0]
    return RegistryError(f"{VENDOR}: the registry's API needs the AWS SDK ({missing} is missing): install the aws "
                         "extra (pip install '.[aws]' from a clone, or CI_ENV_EXTRAS: aws with a wheel)")


def _sdk_errors() -> tuple[type[Exception], type[Exception]]:
    """botocore's (BotoCoreError, ClientError); RegistryError saying what to install without the AWS SDK."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ModuleNotFoundError as error:
        raise _sdk_missing(error) from None
    return BotoCoreError, ClientError


class EcrRemover:
    """Removes tags from ECR repositories with ``batch_delete_image``."""

    capabilities = Capabilities(batch=True, deletes_manifests=True, lists_untagged=True, protects=True)

    def __init__(self, context: VendorContext, client: Any = None) -> None:
        self._context = context
        self._clients: dict[str, Any] = {}
        self._given = client
        self._lock = threading.Lock()
        #: repository -> digests remaining tags reach: ECR deletes an image with its last tag, so such a tag
        #: is not removed when it is the image's last one
        self._protected: dict[str, frozenset[str]] = {}

    def _client(self, repo: RepoAddress) -> Any:
        """The boto3 ECR client for the registry's region and endpoint; PreflightError without region or credentials."""
        if self._given is not None:
            return self._given
        with self._lock:
            if repo.registry in self._clients:
                return self._clients[repo.registry]
        try:
            import boto3
            from botocore.config import Config
        except ModuleNotFoundError as error:
            raise _sdk_missing(error) from None

        env = self._context.env
        region = endpoints.ecr_region(repo.registry, env)
        if not region:
            raise preflight_failure(VENDOR, f"no region for {repo.registry}", "set AWS_REGION")
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            profile_name=env.get("AWS_PROFILE") or None,
            region_name=region,
        )
        if session.get_credentials() is None:
            raise preflight_failure(VENDOR, "no AWS credentials found", CREDENTIALS_HELP)
        client = session.client(
            "ecr",
            endpoint_url=endpoints.ecr_endpoint(env),
            config=Config(retries={"mode": "standard", "max_attempts": 8}),
        )
        with self._lock:
            return self._clients.setdefault(repo.registry, client)

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of ``repo`` (sorted) with digest, manifest media type and push time, from ``describe_images``.

        RegistryError when the repository does not exist; AuthError when the credentials are missing or refused.
        """
        return self._describe(repo, "TAGGED")[0]

    def list_manifests(self, repo: RepoAddress) -> tuple[list[TagInfo], dict[str, str | None]]:
        """:meth:`list_tags` and the untagged images (digest -> ``imagePushedAt``) of one ``describe_images``
        listing of every image (``tagStatus`` ANY)."""
        return self._describe(repo, "ANY")

    def _describe(self, repo: RepoAddress, status: str) -> tuple[list[TagInfo], dict[str, str | None]]:
        BotoCoreError, ClientError = _sdk_errors()

        from ci_env.registry.client import TagInfo

        if not repo.path:
            raise RegistryError(f"{VENDOR}: {repo} is not a repository")
        try:
            client = self._client(repo)
        except PreflightError as error:
            text = error.message.removesuffix(" Nothing was deleted.").replace(CREDENTIALS_HELP, LIST_HELP)
            raise AuthError(f"cannot list the tags of {repo.path}: {text}") from None
        infos: dict[str, TagInfo] = {}
        untagged: dict[str, str | None] = {}
        pages = client.get_paginator("describe_images").paginate(
            filter={"tagStatus": status}, PaginationConfig={"PageSize": LIST_PAGE_SIZE}, **self._ids(repo)
        )
        try:
            for page in pages:
                for image in page.get("imageDetails") or []:
                    pushed = image.get("imagePushedAt")
                    created = _utc(pushed) if pushed is not None else None
                    tags = image.get("imageTags") or []
                    if not tags and image.get("imageDigest"):
                        untagged[str(image["imageDigest"])] = created
                    for tag in tags:
                        infos[tag] = TagInfo(tag, image.get("imageDigest"), image.get("imageManifestMediaType"),
                                             created)
        except ClientError as error:
            code = _code(error)
            if code == "RepositoryNotFoundException":
                raise RegistryError(f"{VENDOR}: repository {repo.path} does not exist in {repo.registry}") from None
            if code in _AUTH_CODES:
                raise AuthError(f"{VENDOR}: listing {repo.path} refused ({code}); {LIST_HELP}") from None
            raise RegistryError(f"{VENDOR}: listing {repo.path}: {code or error}") from None
        except BotoCoreError as error:
            raise RegistryError(f"{VENDOR}: listing {repo.path}: {type(error).__name__}: {error}") from None
        return [infos[tag] for tag in sorted(infos)], untagged

    def protect(self, repo: RepoAddress, digests: frozenset[str]) -> None:
        """Never delete ``digests`` (remaining tags reach them) by removing their last tag."""
        with self._lock:
            self._protected[str(repo)] = frozenset(digests)

    def _last_tags_of_protected(self, client: Any, repo: RepoAddress, batch: Sequence[str],
                                removing: set[str]) -> set[str]:
        """The tags of ``batch`` whose removal would delete a protected image (all its tags are being removed)."""
        with self._lock:
            protected = self._protected.get(str(repo))
        if not protected:
            return set()
        BotoCoreError, ClientError = _sdk_errors()

        try:
            answer = client.describe_images(imageIds=[{"imageTag": t} for t in batch], **self._ids(repo))
        except (ClientError, BotoCoreError):
            return set()  # the delete itself will say what is wrong
        refused: set[str] = set()
        for image in answer.get("imageDetails") or []:
            tags = set(image.get("imageTags") or [])
            if image.get("imageDigest") in protected and tags <= removing:
                refused.update(tags & set(batch))
        return refused

    def delete_manifests(
        self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 1,
    ) -> dict[str, str | CiEnvError]:
        """Delete the images ``digests`` (with their tags) with ``batch_delete_image`` by digest, 100 a call:
        ``removed``, ``absent`` or the error, per digest."""
        BotoCoreError, ClientError = _sdk_errors()

        client = self._client(repo)
        unique = list(dict.fromkeys(digests))
        results: dict[str, str | CiEnvError] = {}
        for start in range(0, len(unique), BATCH_SIZE):
            batch = unique[start: start + BATCH_SIZE]
            try:
                answer = client.batch_delete_image(imageIds=[{"imageDigest": d} for d in batch], **self._ids(repo))
            except (ClientError, BotoCoreError) as error:
                code = _code(error) if isinstance(error, ClientError) else type(error).__name__
                results.update(dict.fromkeys(batch, RegistryError(f"{VENDOR}: deleting images of {repo.path}: "
                                                                  f"{code or error}")))
                continue
            for item in answer.get("failures") or []:
                digest = (item.get("imageId") or {}).get("imageDigest")
                code = str(item.get("failureCode") or "")
                if digest in batch:
                    results[digest] = Status.ABSENT if code in _ABSENT_CODES else RegistryError(
                        f"{VENDOR}: deleting {repo.path}@{digest}: {code}: {item.get('failureReason') or ''}")
            for digest in batch:
                results.setdefault(digest, Status.REMOVED)
        return {digest: results[digest] for digest in unique}

    def _ids(self, repo: RepoAddress) -> dict[str, str]:
        account = endpoints.ecr_account(repo.registry)
        ids = {"repositoryName": repo.path}
        if account:
            ids["registryId"] = account
        return ids

    def preflight(self, repo: RepoAddress) -> None:
        """Check region, credentials and read access to the repository; deletes nothing."""
        BotoCoreError, ClientError = _sdk_errors()

        if not repo.path:
            raise RegistryError(f"{VENDOR}: {repo} is not a repository")
        client = self._client(repo)
        account = {k: v for k, v in self._ids(repo).items() if k == "registryId"}
        try:
            client.describe_repositories(repositoryNames=[repo.path], **account)
        except ClientError as error:
            code = _code(error)
            if code == "RepositoryNotFoundException":
                return
            if code in _AUTH_CODES:
                raise preflight_failure(VENDOR, f"credentials refused ({code})", CREDENTIALS_HELP) from None
            raise RegistryError(f"{VENDOR}: reading {repo.path}: {code or error}") from None
        except BotoCoreError as error:
            problem = f"cannot use the AWS SDK ({type(error).__name__})"
            raise preflight_failure(VENDOR, problem, CREDENTIALS_HELP) from None

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when ECR does not know it."""
        outcome = self.untag_many(repo, [tag])[tag]
        if isinstance(outcome, CiEnvError):
            raise outcome
        return outcome

    def untag_many(
        self, repo: RepoAddress, tags: Sequence[str], *, parallel: int = 1,
        report: Callable[[str, str | CiEnvError], None] | None = None,
    ) -> dict[str, str | CiEnvError]:
        """Remove ``tags`` in calls of up to 100; per tag ``removed``, ``absent`` or the error for that tag.

        The calls run one after another (``parallel`` is accepted for the batch protocol); ``report(tag,
        outcome)`` is called for each tag of a call as soon as that call has answered.

        Size: each batch answers with removed images and failures that map back to tags one by one; splitting it
        would pass the batch's results around.
        """
        BotoCoreError, ClientError = _sdk_errors()

        client = self._client(repo)
        results: dict[str, str | CiEnvError] = {}
        unique = list(dict.fromkeys(tags))
        for start in range(0, len(unique), BATCH_SIZE):
            batch = unique[start: start + BATCH_SIZE]
            refused = self._last_tags_of_protected(client, repo, batch, set(unique))
            for tag in refused:
                results[tag] = RegistryError(
                    f"{VENDOR}: {repo.path}:{tag} was not removed: it is the last tag of an image a kept tag reaches "
                    "(a platform of a kept index, or a signature), and ECR deletes an image with its last tag")
                if report is not None:
                    report(tag, results[tag])
            batch = [tag for tag in batch if tag not in refused]
            if not batch:
                continue
            try:
                answer = client.batch_delete_image(imageIds=[{"imageTag": t} for t in batch], **self._ids(repo))
            except ClientError as error:
                code = _code(error)
                failure: CiEnvError = (
                    AuthError(f"{VENDOR}: removing tags from {repo.path} refused ({code})") if code in _AUTH_CODES
                    else RegistryError(f"{VENDOR}: removing tags from {repo.path}: {code or error}")
                )
                results.update(dict.fromkeys(batch, failure))
                continue
            except BotoCoreError as error:
                results.update(dict.fromkeys(batch, RegistryError(f"{VENDOR}: {type(error).__name__}: {error}")))
                continue
            for image in answer.get("imageIds") or []:
                if image.get("imageTag") in batch:
                    results[image["imageTag"]] = Status.REMOVED
            for item in answer.get("failures") or []:
                failed_tag = (item.get("imageId") or {}).get("imageTag")
                if failed_tag not in batch:
                    continue
                tag = str(failed_tag)
                code = str(item.get("failureCode") or "")
                if code in _ABSENT_CODES:
                    results[tag] = Status.ABSENT
                else:
                    results[tag] = RegistryError(
                        f"{VENDOR}: removing {repo.path}:{tag}: {code}: {item.get('failureReason') or ''}".rstrip(": ")
                    )
            for tag in batch:  # ECR answers for every image id; one it is silent about is not known to be gone
                silent = RegistryError(f"{VENDOR}: removing {repo.path}:{tag}: ECR did not report on it")
                results.setdefault(tag, silent)
            if report is not None:
                for tag in batch:
                    report(tag, results[tag])
        return results


#: what listing the repositories of a registry needs
NAMESPACE_HELP = (
    "give the job AWS credentials allowed ecr:DescribeRepositories (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE, or a role)"
)


class EcrNamespaces:
    """Lists ECR repositories by prefix (``NamespaceLister``): ``describe_repositories`` (paginated, 1,000 a page,
    the registry's account), keeping the names under the prefix (every one for prefix "")."""

    def __init__(self, context: VendorContext, client: Any = None) -> None:
        self._remover = EcrRemover(context, client)

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """Every repository name under ``namespace`` (a path prefix; "": the whole registry); [] when none is."""
        BotoCoreError, ClientError = _sdk_errors()

        from ci_env.registry.reference import RepoAddress

        prefix = namespace.strip("/")
        try:
            client = self._remover._client(RepoAddress(registry, prefix))
        except PreflightError as error:
            text = error.message.removesuffix(" Nothing was deleted.").replace(CREDENTIALS_HELP, NAMESPACE_HELP)
            raise AuthError(f"cannot list the repositories of {registry}: {text}") from None
        account = endpoints.ecr_account(registry)
        pages = client.get_paginator("describe_repositories").paginate(
            PaginationConfig={"PageSize": LIST_PAGE_SIZE}, **({"registryId": account} if account else {}))
        names: list[str] = []
        what = f"{VENDOR}: listing the repositories of {registry}"
        try:
            for page in pages:
                for repository in page.get("repositories") or []:
                    name = repository.get("repositoryName")
                    if isinstance(name, str) and (not prefix or name.startswith(prefix + "/")):
                        names.append(name)
        except ClientError as error:
            code = _code(error)
            if code in _AUTH_CODES:
                raise AuthError(f"{what} refused ({code}); {NAMESPACE_HELP}") from None
            raise RegistryError(f"{what}: {code or error}") from None
        except BotoCoreError as error:
            raise RegistryError(f"{what}: {error}") from None
        return sorted(set(names))
