"""Ferry's error tree. Every error Ferry raises on purpose derives from FerryError.

    FerryError                      (retryable: False unless stated)
    ├── ConfigError                 a setting is missing or malformed
    ├── DatabaseError               PostgreSQL unreachable or migrations not current
    ├── NotFound                    a row the caller asked for does not exist (for the caller)
    ├── Conflict                    the request collides with existing state
    ├── ValidationError             input refused; ``errors`` maps field paths to messages
    ├── NetworkPolicyError          an address Ferry must not connect to
    └── RegistryError               a registry refused or failed a request
        ├── RegistryUnavailable     connection errors, timeouts, 5xx, 429 (retryable)
        ├── AuthError               credentials refused (401/403)
        │   └── PermissionDenied    authenticated, but no push/pull right on the repository
        ├── ManifestNotFound / BlobNotFound / RepositoryNotFound
        ├── ManifestInvalid         the target refused the manifest
        ├── DigestMismatch          bytes do not hash to the digest they claim
        ├── UploadError             a blob upload session failed irrecoverably
        └── ListingLimit            a listing loops, or passes a task's repository/tag cap

Messages are meant for people and never contain secrets. ``origin`` names the
registry endpoint whose request failed (set by :mod:`common.registry`, compared
by identity), so a copy can tell a source's failure from a target's; it sits on
the base class because a network-policy refusal met mid-request (a redirect, a
token realm) needs it as much as a RegistryError does.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class FerryError(Exception):
    """Base of every error Ferry raises on purpose."""

    retryable: bool = False
    origin: object | None = None

    def __init__(
        self, message: str = "", *, retryable: bool | None = None, origin: object | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.origin = origin

    def __str__(self) -> str:
        return self.message


class ConfigError(FerryError):
    """A setting is missing or malformed; the message names the variable."""


class DatabaseError(FerryError):
    """PostgreSQL cannot be used (unreachable, or its schema is not current)."""


class NotFound(FerryError):
    """The object does not exist, or belongs to another tenant."""


def found(row: T | None, message: str) -> T:
    """``row`` itself when there is one; NotFound(``message``) when it is None."""
    if row is None:
        raise NotFound(message)
    return row


class Conflict(FerryError):
    """The request collides with existing state (duplicate name, object in use)."""


class ValidationError(FerryError):
    """Input was refused; ``errors`` maps field paths to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class NetworkPolicyError(FerryError):
    """Ferry must not connect to this address (link-local, metadata or denied network)."""


class RegistryError(FerryError):
    """A registry refused or failed a request."""


class RegistryUnavailable(RegistryError):
    """Connection error, timeout, 5xx or 429: worth retrying later."""

    retryable = True


class AuthError(RegistryError):
    """The registry refused the credentials."""


class PermissionDenied(AuthError):
    """Authenticated, but without the right (push or pull) the operation needs."""


class RepositoryNotFound(RegistryError):
    """The repository does not exist on the registry."""


class ManifestNotFound(RegistryError):
    """The tag or manifest digest does not exist."""


class BlobNotFound(RegistryError):
    """A blob referenced by a manifest does not exist."""


class ManifestInvalid(RegistryError):
    """The registry refused a manifest (unknown blob, bad media type, ...)."""


class DigestMismatch(RegistryError):
    """Bytes did not hash to the digest they were announced with."""


class UploadError(RegistryError):
    """A blob upload could not be completed."""


class ListingLimit(RegistryError):
    """A listing that cannot end well: its pagination loops, or it passes a task's cap."""
