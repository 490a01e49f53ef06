"""Records in the stages storage: the model, the ``:local`` and registry stores, publication snapshots, and
the publication, managed-image and metadata records build-and-publish writes and cleanup reads."""

from ci_env.records.local import LocalStore, state_directory
from ci_env.records.managed import (
    add_managed_image,
    list_managed_images,
    read_metadata,
    remove_managed_image,
    write_metadata,
)
from ci_env.records.model import (
    LOCAL_STAGES_REPOSITORY,
    MANAGED,
    METADATA,
    METADATA_PREFIX,
    PUBLICATIONS,
    SIGNATURE_LABEL,
    STRATEGIES,
    CommitMetadata,
    Publication,
    RecordStore,
    is_record_tag,
    is_stage_tag,
    managed_key,
    metadata_key,
    parse_image_name,
    publication_key,
    utc_now,
)
from ci_env.records.publications import (
    PublicationsRead,
    forget_publications,
    read_publication_state,
    read_publications,
    remove_publications,
    write_publication,
    written_since,
)
from ci_env.records.registry import RegistryStore
from ci_env.records.stores import open_store

__all__ = [
    "LOCAL_STAGES_REPOSITORY", "MANAGED", "METADATA", "METADATA_PREFIX", "PUBLICATIONS", "SIGNATURE_LABEL",
    "STRATEGIES", "CommitMetadata", "LocalStore", "Publication", "PublicationsRead", "RecordStore", "RegistryStore",
    "add_managed_image", "forget_publications", "is_record_tag", "is_stage_tag", "list_managed_images",
    "managed_key", "metadata_key", "open_store", "parse_image_name", "publication_key", "read_metadata",
    "read_publication_state", "read_publications", "remove_managed_image", "remove_publications",
    "state_directory", "utc_now", "write_metadata", "write_publication", "written_since",
]
