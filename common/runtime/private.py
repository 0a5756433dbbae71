"""Files and directories only Ferry's user may read: secrets, state, logs.

Ferry changes the permissions only of what it creates itself, never of a
directory it found (a home directory, a system temp dir).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def ensure_dir(path: Path, mode: int = PRIVATE_DIR) -> list[Path]:
    """Create ``path`` and any missing parent with ``mode``; the directories created.

    Existing directories keep their permissions.
    """
    created: list[Path] = []
    for level in [*reversed(path.parents), path]:
        if not level.exists():
            try:
                level.mkdir(mode=mode)
            except FileExistsError:
                continue
            os.chmod(level, mode)  # mkdir's mode passes through the umask
            created.append(level)
    return created


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """A file descriptor on ``path``, a file created 0600 (and made 0600 if it was not)."""
    fd = os.open(path, flags, PRIVATE_FILE)
    if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
        os.fchmod(fd, PRIVATE_FILE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text``, the file readable by its owner only."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_or_create_secret(path: Path) -> str:
    """The secret stored in ``path`` (0600), generated on first use (URL-safe, 192 bits)."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24))
    elif stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE:
        os.chmod(path, PRIVATE_FILE)
    return path.read_text().strip()
