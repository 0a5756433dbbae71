"""Ferry's OCI registry client and copier (no Flask, no Celery).

- :class:`RegistryClient` talks to one registry (auth, listing, manifests, blobs).
- :func:`classify` tells what a manifest is (:class:`Kind`).
- :func:`copy_artifact` copies one repository:tag exactly and idempotently.
- :mod:`common.registry.coordination` shares blob knowledge between copies.
"""

from common.registry.auth import TokenCache
from common.registry.blobs import BlobSource, BytesSource, RemoteBlob, Stopped, UploadSession
from common.registry.client import RegistryClient, RetryPolicy
from common.registry.coordination import BlobCoordinator, InProcessCoordinator
from common.registry.copier import CopyOutcome, CopyStatus, ProgressEvent, copy_artifact
from common.registry.media import Descriptor, Kind, Manifest, ManifestRef, classify

__all__ = [
    "BlobCoordinator",
    "BlobSource",
    "BytesSource",
    "CopyOutcome",
    "CopyStatus",
    "Descriptor",
    "InProcessCoordinator",
    "Kind",
    "Manifest",
    "ManifestRef",
    "ProgressEvent",
    "RegistryClient",
    "RemoteBlob",
    "RetryPolicy",
    "Stopped",
    "TokenCache",
    "UploadSession",
    "classify",
    "copy_artifact",
]
