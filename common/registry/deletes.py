"""Deleting a manifest reference: a tag where the registry allows it, or a digest.

OCI distribution 1.1 lets a client delete a tag (``DELETE /v2/<name>/manifests/<tag>``);
CNCF Distribution 2.x refuses that (400 or 405) and deletes manifests by digest only,
which removes every tag pointing to the digest. :func:`delete_reference` says which
happened, so that the caller decides about the digest itself.
"""

from __future__ import annotations

from enum import StrEnum

from common.registry.client import RegistryClient
from common.registry.media import check_reference, check_repository


class Deleted(StrEnum):
    """What a DELETE of a manifest reference did."""

    DONE = "done"
    ABSENT = "absent"
    REFUSED = "refused"  # the registry does not delete this kind of reference


def delete_reference(client: RegistryClient, repository: str, reference: str) -> Deleted:
    """DELETE the manifest ``reference`` (tag or digest) in ``repository``."""
    check_repository(repository)
    check_reference(reference)
    reply = client.request(
        "DELETE",
        f"/v2/{repository}/manifests/{reference}",
        scopes=frozenset({f"repository:{repository}:pull,push,delete"}),
    )
    reply.close()
    if reply.status_code in (200, 202, 204):
        return Deleted.DONE
    if reply.status_code == 404:
        return Deleted.ABSENT
    if reply.status_code in (400, 405) and ":" not in reference:
        return Deleted.REFUSED
    raise client.fail(reply, f"deletion of {repository}:{reference}", repository=repository)
