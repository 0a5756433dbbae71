"""Content digests (``algorithm:hex``): the one place they are parsed, computed and checked.

Registries address every blob and manifest by digest, and Ferry trusts no bytes
until they hash to the digest they were announced with: a manifest is checked
on its exact bytes, a blob while it streams past (:class:`Hasher`), never by
holding it whole. Only ``sha256`` and ``sha512`` are accepted; a digest is
validated before it is put into a URL path, where anything else could escape it.
"""

from __future__ import annotations

import hashlib
import re

from common.errors import ManifestInvalid

_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


def is_digest(ref: str) -> bool:
    """True when ``ref`` is a well-formed sha256/sha512 digest."""
    # fullmatch: `$` with match() would let a trailing newline through.
    return isinstance(ref, str) and _DIGEST_RE.fullmatch(ref) is not None


def check_digest(digest: str, where: str = "") -> str:
    """Return ``digest`` if well formed; anything else could escape a URL path."""
    if not isinstance(digest, str) or not is_digest(digest):
        place = f" in {where}" if where else ""
        raise ManifestInvalid(f"invalid digest {str(digest)[:80]!r}{place}")
    return digest


def algorithm_of(digest: str) -> str:
    """The algorithm a digest is written in (``sha256`` for ``sha256:...``)."""
    return digest.split(":", 1)[0]


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class Hasher:
    """Hashes bytes as they stream past, in the algorithm of the digest they must match."""

    def __init__(self, expected: str) -> None:
        self.expected = expected
        self._algorithm = algorithm_of(expected)
        self._hash = hashlib.new(self._algorithm)

    def update(self, data: bytes | bytearray) -> None:
        """Add the next bytes."""
        self._hash.update(data)

    @property
    def digest(self) -> str:
        """The ``algorithm:hex`` digest of everything added so far."""
        return f"{self._algorithm}:{self._hash.hexdigest()}"

    @property
    def matches(self) -> bool:
        """True when the bytes added so far hash to ``expected``."""
        return self.digest == self.expected
