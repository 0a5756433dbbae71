"""Ferry's OCI registry client and copier (no Flask, no Celery).

- :class:`RegistryClient` talks to one registry: a facade over a
  :mod:`~common.registry.transport` (requests, auth, retries, network policy)
  and the parts composed on it: listing, manifests, blob reader, uploader.
- :func:`classify` tells what a manifest is (:class:`Kind`).
- :func:`copy_artifact` copies one repository:tag exactly and idempotently.
- :mod:`common.registry.coordination` shares blob knowledge between copies.

Inside, each module imports only those before it in this order: digest,
media, retry, reply, deadline, auth, refusals, connect, transport,
blob_reader, upload_session, uploader, manifests, listing, client, outcome,
coordination, blob_copy, copier.
"""

from common.registry.auth import TokenCache
from common.registry.blob_reader import BlobSource, BytesSource, RemoteBlob
from common.registry.client import RegistryClient
from common.registry.coordination import BlobCoordinator, InProcessCoordinator
from common.registry.copier import Prefetched, copy_artifact
from common.registry.media import Descriptor, Kind, Manifest, ManifestRef, classify
from common.registry.outcome import CopyOutcome, CopyStatus, ProgressEvent
from common.registry.retry import RetryPolicy
from common.registry.upload_session import UploadSession
from common.registry.uploader import Stopped

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
    "Prefetched",
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
