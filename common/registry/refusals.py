"""Refusals: the error a person can act on, for an answer a registry should not give.

Statuses map to the error tree (401/403 to AuthError or PermissionDenied,
404 to the matching not-found error, 5xx and 429 left after the retries to
RegistryUnavailable), refined by the OCI error code in the body. Messages
name the registry, the operation and what was refused, carry the status,
code and message the registry sent (at most 300 characters), and never a
secret: they pass the transport's ``scrub``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from common.errors import (
    AuthError,
    BlobNotFound,
    DigestMismatch,
    ManifestInvalid,
    ManifestNotFound,
    PermissionDenied,
    RegistryError,
    RegistryUnavailable,
    RepositoryNotFound,
)
from common.registry.auth import Authenticator, parse_challenges
from common.registry.reply import Reply
from common.registry.retry import retryable_status

MAX_ERROR_BODY_BYTES = 256 * 1024
_NOT_FOUND = {
    "MANIFEST_UNKNOWN": ManifestNotFound,
    "BLOB_UNKNOWN": BlobNotFound,
    "NAME_UNKNOWN": RepositoryNotFound,
}
_MANIFEST_CODES = frozenset(
    {
        "MANIFEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "TAG_INVALID",
        "NAME_INVALID",
        "SIZE_INVALID",
        "UNSUPPORTED",
    }
)


class Refusals:
    """Explains one registry's unexpected answers; errors carry ``origin``."""

    def __init__(
        self, display: str, auth: Authenticator, scrub: Callable[[str], str], origin: object
    ) -> None:
        self.display, self.auth, self.scrub, self.origin = display, auth, scrub, origin

    def explain(
        self,
        reply: Reply,
        what: str,
        *,
        repository: str | None = None,
        writing: bool = False,
        missing: type[RegistryError] = RegistryError,
        manifest_put: bool = False,
    ) -> RegistryError:
        """The error a person can act on for an unexpected answer about ``what`` (a noun)."""
        code, message = _oci_error(reply)
        status, origin = reply.status_code, self.origin
        detail = self.scrub(
            f"{status}{' ' + code if code else ''}{': ' + message if message else ''}"[:300]
        )
        if status == 404:
            kind: type[RegistryError] = _NOT_FOUND.get(code, missing)
            return kind(f"{self.display}: {what} not found ({detail})", origin=origin)
        if status in (401, 403):
            return self._refused(reply, what, detail, repository, "push" if writing else "pull")
        if retryable_status(status):
            return RegistryUnavailable(
                f"{self.display}: {reply.method} {what} failed after {reply.attempts} "
                f"attempt(s) ({detail})",
                origin=origin,
            )
        if code == "DIGEST_INVALID":
            return DigestMismatch(
                f"{self.display} refused {what}: wrong digest ({detail})", origin=origin
            )
        if manifest_put or code in _MANIFEST_CODES:
            return ManifestInvalid(f"{self.display} refused {what} ({detail})", origin=origin)
        return RegistryError(
            f"{self.display} refused {reply.method} {what} ({detail})", origin=origin
        )

    def _refused(
        self, reply: Reply, what: str, detail: str, repository: str | None, right: str
    ) -> AuthError:
        """The error for a 401 or 403: no credentials, wrong ones, or not enough rights."""
        if reply.status_code == 403:
            target = f" on {repository}" if repository else f" for {what}"
            return PermissionDenied(
                f"credentials for {self.display} have no {right} permission{target} ({detail})",
                origin=self.origin,
            )
        challenges = parse_challenges(reply.headers.get("WWW-Authenticate", ""))
        challenge = next(iter(challenges), None)
        if challenge and challenge.params.get("error") == "insufficient_scope" and repository:
            return PermissionDenied(
                f"credentials for {self.display} have no {right} permission on {repository}",
                origin=self.origin,
            )
        if self.auth.has_credentials:
            return AuthError(
                f"{self.display} refused the credentials for user {self.auth.username} ({detail})",
                origin=self.origin,
            )
        return AuthError(f"{self.display} requires credentials ({detail})", origin=self.origin)


def _oci_error(reply: Reply) -> tuple[str, str]:
    """Code and message of the first OCI error in the body ("" when there is none)."""
    try:
        body = json.loads(reply.read(MAX_ERROR_BODY_BYTES) or b"{}")
        first = (body.get("errors") or [{}])[0]
        return str(first.get("code") or ""), str(first.get("message") or "")
    except (ValueError, AttributeError, IndexError, TypeError, RegistryError):
        return "", ""
