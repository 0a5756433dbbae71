"""The blobs of one copy: each reaches the target repository once, with the fewest requests.

Per blob, in order (``locate`` is the coordinator's, not a registry request):

* the coordinator knows the target repository holds it: nothing is sent. The
  hint is checked by the registry when the manifest is pushed (it refuses a
  manifest whose blobs the repository lacks); the copier then copies again
  with :attr:`BlobCopy.trust` off, and no hint is taken on faith.
* another repository of the target holds it: one ``POST ?mount=&from=``; a
  201 is done, a 202 opens the session the upload then uses.
* nobody knows: claim the upload (so a blob several copies need at once
  crosses the wire once; the others wait, then mount from where it landed),
  then one ``POST ?mount=<digest>&from=<this repository>`` (or the source
  repository when both ends are one registry): a 201 means the blob was
  already there, a 202 opens the session that carries the upload, which is
  one ``PUT`` for blobs up to the uploader's monolithic threshold.

Copies into one repository bring a blob one at a time (a claim on the blob
and the repository), so sibling tags copied at once do not mount it twice.
No HEAD is sent, except for a foreign layer (it may live only at its URLs).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import AuthError
from common.registry.blob_reader import RemoteBlob
from common.registry.client import RegistryClient
from common.registry.coordination import BlobCoordinator
from common.registry.media import Descriptor
from common.registry.upload_session import UploadSession
from common.registry.uploader import Stopped

log = logging.getLogger("ferry.registry.copier")

_MiB = 1024 * 1024
# How a blob was handled, for the outcome's counters.
SKIPPED, MOUNTED, UPLOADED = "skipped", "mounted", "uploaded"


@dataclass
class BlobCopy:
    """Copies blobs from ``src_repo`` to ``dst_repo``; thread-safe across blobs."""

    src: RegistryClient
    src_repo: str
    dst: RegistryClient
    dst_repo: str
    coordinator: BlobCoordinator
    stopping: Callable[[], bool]
    done: Callable[[Descriptor, str], None]  # (blob, SKIPPED | MOUNTED | UPLOADED)
    sent: Callable[[str, int], None]  # (digest, bytes sent just now)
    trust: bool = True  # skip a blob the coordinator places in dst_repo, unasked
    trusted: list[Descriptor] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def copy(self, desc: Descriptor) -> None:
        """Make ``desc`` present in the target repository (or know it is, see above)."""
        if self.stopping():
            raise Stopped()
        if desc.urls:
            self._foreign(desc)
            return
        key, digest = self.dst.key, desc.digest
        where = self.coordinator.locate(key, digest, prefer=self.dst_repo)
        if self._here(desc, where):
            return
        # Short enough that a holder that died (worker killed) delays the others
        # by seconds, long enough for a healthy upload at 32 MiB/s. A slower
        # upload past it only costs a second upload of the same bytes.
        ttl = 15.0 + max(desc.size, 0) / (32 * _MiB)
        # One copy at a time brings a blob into a repository: a sibling tag that needs
        # it too waits, then finds it there, instead of mounting it a second time.
        into = f"{digest} {self.dst_repo}"
        # The claims this copy holds on the blob, released together (with what it learnt).
        held: list[str] = []
        mine, fresh = self.coordinator.claim_and_locate(key, into, digest, ttl, self.dst_repo)
        if mine:
            held.append(into)
            where = fresh
        else:
            self.coordinator.wait_for(key, into, ttl)
            where = self.coordinator.locate(key, digest, prefer=self.dst_repo)
        try:
            if not self._here(desc, where):
                self._bring(desc, where, ttl, held)
        finally:
            if held:
                self.coordinator.settle(key, held)

    def _bring(self, desc: Descriptor, where: str | None, ttl: float, held: list[str]) -> None:
        """Mount from ``where``, or claim the upload (or wait for its holder) and go on."""
        key, digest = self.dst.key, desc.digest
        session: UploadSession | None = None
        if where and where != self.dst_repo:
            mounted, session = self._try_mount(desc, where, held)
            if mounted:
                return
        # Claimed: another copy may have finished between our first look and the claim
        # (hence the fresh location). Not claimed: another copy sends it now; mount from
        # where it lands.
        claimed, again = self.coordinator.claim_and_locate(key, digest, digest, ttl, self.dst_repo)
        if claimed:
            held.append(digest)
        else:
            if session is not None:
                session.cancel()  # it might expire while we wait
                session = None
            again = self.coordinator.wait_for(key, digest, ttl, prefer=self.dst_repo)
        self._finish(desc, where, again, session, held)

    def _finish(
        self,
        desc: Descriptor,
        first: str | None,
        again: str | None,
        session: UploadSession | None,
        held: list[str],
    ) -> None:
        """After the claim (or the wait): use what is known now, else send the bytes."""
        if self._here(desc, again):
            if session is not None:
                session.cancel()
            return
        if again and again not in (first, self.dst_repo):
            if session is not None:
                session.cancel()
            mounted, session = self._try_mount(desc, again, held)
            if mounted:
                return
        if session is None:
            # The one request that both asks and opens: 201 it is there, 202 upload.
            probe = self.src_repo if self.src.key == self.dst.key else self.dst_repo
            mounted, session = self._try_mount(desc, probe, held)
            if mounted:
                return
        self.dst.upload_blob(
            self.dst_repo,
            desc.digest,
            desc.size,
            RemoteBlob(self.src.blobs, self.src_repo, desc.digest, self.stopping),
            session=session,
            should_stop=self.stopping,
            on_sent=lambda n: self.sent(desc.digest, n),
        )
        self._landed(desc, held)
        self.done(desc, UPLOADED)

    def _here(self, desc: Descriptor, where: str | None) -> bool:
        """True (and counted as skipped) when the coordinator places the blob in dst_repo
        and hints are trusted; the manifest push checks it."""
        if where != self.dst_repo or not self.trust:
            return False
        with self._lock:
            self.trusted.append(desc)
        self.done(desc, SKIPPED)
        return True

    def _foreign(self, desc: Descriptor) -> None:
        """A layer with URLs: on the target, fetched from the source, or only at its URLs."""
        if self.dst.blob_exists(self.dst_repo, desc.digest):
            self.done(desc, SKIPPED)
        elif not self.src.blob_exists(self.src_repo, desc.digest):
            # Non-distributable: it lives at its URLs, not in registries.
            self.done(desc, SKIPPED)
        else:
            self._finish(desc, None, None, None, [])

    def _landed(self, desc: Descriptor, held: list[str]) -> None:
        """``desc`` is in dst_repo now: remember it, and end the claims held on it at once."""
        key = self.dst.key
        if held:
            self.coordinator.settle(key, list(held), remember=(desc.digest, self.dst_repo))
            held.clear()
        else:
            self.coordinator.remember(key, desc.digest, self.dst_repo)

    def _try_mount(
        self, desc: Descriptor, repo: str, held: list[str]
    ) -> tuple[bool, UploadSession | None]:
        """(True, None) when mounted from ``repo`` (or already in dst_repo); else (False,
        the open session of the declined mount, or None when the mount was refused)."""
        try:
            session = self.dst.start_upload(self.dst_repo, mount=desc.digest, from_repository=repo)
        except AuthError as exc:
            # No pull right on the other repository: a normal upload still works.
            log.info("mount of %s from %s refused (%s); uploading instead", desc.digest, repo, exc)
            return False, None
        if session is not None:
            return False, session
        self._landed(desc, held)
        self.done(desc, SKIPPED if repo == self.dst_repo else MOUNTED)
        return True, None
