"""The build <-> cleanup contract: the words build-and-publish writes and cleanup reads.

build-and-publish tags each image by a tagging strategy, labels it, and writes records of each kind into the
stages storage (``ci_env.records``); cleanup finds the strategy of a tag by its record, else by these labels,
and decides by it. A word changed here changes both sides at once, so neither can drift from the other.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------ tagging strategies

CUSTOM = "custom"
GIT_BRANCH = "git-branch"
GIT_TAG = "git-tag"
GIT_COMMIT = "git-commit"
STAGES_SIGNATURE = "stages-signature"
#: every strategy a publication record or a ``werf-tag-strategy`` label may name
STRATEGIES = (CUSTOM, GIT_BRANCH, GIT_TAG, GIT_COMMIT, STAGES_SIGNATURE)
#: the strategies whose tag names a git reference (the record keeps the reference's original name)
GIT_STRATEGIES = (GIT_BRANCH, GIT_TAG, GIT_COMMIT)

#: what ``ci-env setup --tagging-strategy`` may export for the CI jobs to publish by: each image's content
#: signature, or the git tag (else the branch) of the pipeline
TAGGING_STRATEGIES: tuple[str, ...] = (STAGES_SIGNATURE, "tag-or-branch")

# ------------------------------------------------------------------------------------ image labels

#: the labels every published image gets (besides the OCI ones), as werf sets them
IMAGE_LABEL = "werf-image"
#: the managed image's name ("" for the nameless image): cleanup's owner of a tag without a record
IMAGE_NAME_LABEL = "werf-image-name"
STRATEGY_LABEL = "werf-tag-strategy"
#: the tag the image was first published under (without a monorepo prefix)
IMAGE_TAG_LABEL = "werf-image-tag"
SIGNATURE_LABEL = "werf-content-signature"
SOURCE_LABEL = "org.opencontainers.image.source"
REVISION_LABEL = "org.opencontainers.image.revision"
CREATED_LABEL = "org.opencontainers.image.created"

# ------------------------------------------------------------------------------------ record kinds

#: one record per published tag (``ci_env.records.model.Publication``)
PUBLICATIONS = "publications"
#: one record per managed image name
MANAGED = "managed"
#: one record per (commit, content signature) published (``ci_env.records.model.CommitMetadata``)
METADATA = "metadata"
RECORD_KINDS = (PUBLICATIONS, MANAGED, METADATA)

# ------------------------------------------------------------------------------------ :local stages

#: ``:local`` stages: build-and-publish tags each locally built image ``ci-env-stages/<project>:<signature>``
#: and labels it ``werf-content-signature=<signature>``; cleanup finds the stages by both.
LOCAL_STAGES_REPOSITORY = "ci-env-stages"
