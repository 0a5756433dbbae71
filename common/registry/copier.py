"""Copy of one item: a source repository:tag to a target repository:tag.

Follows DESIGN.md "Copy of one item": resolve the source; check the target
tag (same digest: ``up-to-date``; different and override off: ``kept``,
nothing written); then every blob (present: skip; held by another repository
of the target: mount; else stream with digest verification); then index
children by digest; the manifest by tag last, byte for byte. Idempotent and
safe to run twice at once: everything is addressed by digest and the tag is
written last. Expected registry failures become a ``failed`` outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from common.errors import AuthError, FerryError, ManifestInvalid
from common.registry.blob_reader import RemoteBlob
from common.registry.client import RegistryClient
from common.registry.coordination import DEFAULT_COORDINATOR, BlobCoordinator
from common.registry.media import Descriptor, Manifest, classify
from common.registry.outcome import CopyOutcome, CopyStatus, ProgressEvent
from common.registry.upload_session import UploadSession
from common.registry.uploader import Stopped

log = logging.getLogger("ferry.registry.copier")

T = TypeVar("T")
R = TypeVar("R")
MAX_INDEX_DEPTH = 3
_MiB = 1024 * 1024
# One end of a copy: the registry, the repository, and the reference (source) or tag (target).
_End = tuple[RegistryClient, str, str]


def copy_artifact(
    src: RegistryClient,
    src_repo: str,
    src_ref: str,
    dst: RegistryClient,
    dst_repo: str,
    dst_tag: str,
    *,
    override: bool = False,
    coordinator: BlobCoordinator | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    expected_digest: str | None = None,
    max_parallel_blobs: int = 4,
) -> CopyOutcome:
    """Copy ``src_repo:src_ref`` to ``dst_repo:dst_tag``; registry failures become an outcome."""
    job = _Copy(
        (src, src_repo, src_ref),
        (dst, dst_repo, dst_tag),
        override=override,
        coordinator=coordinator or DEFAULT_COORDINATOR,
        should_stop=should_stop,
        progress=progress,
        expected_digest=expected_digest,
        parallel=max(1, max_parallel_blobs),
    )
    return job.run()


class _Copy:
    def __init__(
        self,
        src: _End,
        dst: _End,
        *,
        override: bool,
        coordinator: BlobCoordinator,
        should_stop: Callable[[], bool] | None,
        progress: Callable[[ProgressEvent], None] | None,
        expected_digest: str | None,
        parallel: int,
    ) -> None:
        self.src, self.src_repo, self.src_ref = src
        self.dst, self.dst_repo, self.dst_tag = dst
        self.override, self.coordinator = override, coordinator
        self.should_stop, self.progress = should_stop, progress
        self.expected_digest, self.parallel = expected_digest, parallel
        self.outcome = CopyOutcome(status=CopyStatus.FAILED)
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._blobs_total = self._blobs_done = self._bytes_total = self._bytes_done = 0
        self._inflight: dict[str, int] = {}

    # -- driver ------------------------------------------------------------------------
    def run(self) -> CopyOutcome:
        started = time.monotonic()
        out = self.outcome
        try:
            self._run()
        except Stopped:
            out.status = CopyStatus.STOPPED
            out.reason = "stopped before completion; the target tag was not changed"
        except FerryError as exc:
            out.status = CopyStatus.FAILED
            out.reason = self._reason(exc)
            out.retryable = exc.retryable
        finally:
            out.seconds = round(time.monotonic() - started, 3)
        log.info(
            "copy %s/%s:%s -> %s/%s:%s: %s%s",
            self.src.display,
            self.src_repo,
            self.src_ref,
            self.dst.display,
            self.dst_repo,
            self.dst_tag,
            out.status,
            f" ({out.reason})" if out.reason else "",
        )
        self._emit("done")
        return out

    def stopping(self) -> bool:
        return self._abort.is_set() or bool(self.should_stop and self.should_stop())

    def _reason(self, exc: FerryError) -> str:
        """The error's message, prefixed with the side that raised it when only one did."""
        by_src, by_dst = self.src.raised(exc), self.dst.raised(exc)
        if by_src and not by_dst:
            return f"source: {exc}"
        if by_dst and not by_src:
            return f"target: {exc}"
        return str(exc)

    def _run(self) -> None:
        out = self.outcome
        if self.stopping():
            raise Stopped()
        top = self.src.get_manifest(self.src_repo, self.src_ref)
        out.digest, out.kind = top.digest, classify(top)
        if self.expected_digest and top.digest != self.expected_digest:
            out.note = (
                f"{self.src_repo}:{self.src_ref} now points to {top.digest}, not "
                f"{self.expected_digest}; copied what it points to now"
            )
        existing = self.dst.head_manifest(self.dst_repo, self.dst_tag)
        if existing and existing.digest == top.digest:
            out.status = CopyStatus.UP_TO_DATE
            return
        if existing and not self.override:
            out.status = CopyStatus.KEPT
            out.target_digest = existing.digest
            out.note = ((out.note + "; ") if out.note else "") + (
                f"target tag points to {existing.digest} and override is off"
            )
            return
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="ferry-copy") as pool:
            levels, blobs = self._plan(pool, top)
            self._copy_blobs(pool, blobs)
            self._emit("manifests")
            for level in reversed(levels):  # deepest first: parents need their children
                self._map(pool, self._push_child, level)
        if self.stopping():
            raise Stopped()
        self.dst.put_manifest(self.dst_repo, self.dst_tag, top)
        out.manifests_pushed += 1
        out.status = CopyStatus.COPIED

    # -- plan ---------------------------------------------------------------------------
    def _plan(
        self, pool: ThreadPoolExecutor, top: Manifest
    ) -> tuple[list[list[Manifest]], list[Descriptor]]:
        """Child manifests missing on the target (by level) and the blobs they all need."""
        levels: list[list[Manifest]] = []
        blobs: dict[str, Descriptor] = {}
        seen = {top.digest}
        level = [top]
        while level:
            wanted: list[Descriptor] = []
            for m in level:
                for d in m.children():
                    if d.digest not in seen:
                        seen.add(d.digest)
                        wanted.append(d)
                for b in m.blobs():
                    blobs.setdefault(b.digest, b)
            if not wanted:
                break
            if len(levels) >= MAX_INDEX_DEPTH:
                raise ManifestInvalid(f"index {top.digest} nests deeper than {MAX_INDEX_DEPTH}")
            level = [m for m in self._map(pool, self._missing_child, wanted) if m is not None]
            if level:
                levels.append(level)
        return levels, list(blobs.values())

    def _missing_child(self, desc: Descriptor) -> Manifest | None:
        if self.stopping():
            raise Stopped()
        if self.dst.head_manifest(self.dst_repo, desc.digest) is not None:
            return None  # the target accepted it once, so it has its blobs
        return self.src.get_manifest(self.src_repo, desc.digest)

    def _push_child(self, manifest: Manifest) -> None:
        if self.stopping():
            raise Stopped()
        self.dst.put_manifest(self.dst_repo, manifest.digest, manifest)
        with self._lock:
            self.outcome.manifests_pushed += 1

    def _map(self, pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` in the pool; on the first error the others are stopped."""
        futures: list[Future[R]] = [pool.submit(fn, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in done if f.exception() is not None]
        if errors:
            self._abort.set()
            for f in pending:
                f.cancel()
            wait(pending)
            # The first real failure explains the outcome; the others were told to stop.
            raise next((e for e in errors if not isinstance(e, Stopped)), errors[0])
        return [f.result() for f in futures]

    # -- blobs --------------------------------------------------------------------------
    def _copy_blobs(self, pool: ThreadPoolExecutor, blobs: list[Descriptor]) -> None:
        with self._lock:
            self._blobs_total = len(blobs)
            self._bytes_total = sum(max(b.size, 0) for b in blobs)
        self._emit("blobs")
        self._map(pool, self._copy_blob, blobs)

    def _copy_blob(self, desc: Descriptor) -> None:
        if self.stopping():
            raise Stopped()
        if self._already_there(desc):
            return
        mounted, session = self._try_mount(desc, self._mount_candidates(desc.digest))
        if mounted:
            return
        # Short enough that a holder that died (worker killed) delays the others
        # by seconds, long enough for a healthy upload at 32 MiB/s. A slower
        # upload past it only costs a second upload of the same bytes.
        ttl = 15.0 + max(desc.size, 0) / (32 * _MiB)
        key, digest = self.dst.key, desc.digest
        claimed = self.coordinator.claim_upload(key, digest, ttl)
        if claimed:
            done, session = self._look_again(desc, session)
        else:
            done, session = self._wait_for_holder(desc, session, ttl)
        if done:
            return
        try:
            self.dst.upload_blob(
                self.dst_repo,
                digest,
                desc.size,
                RemoteBlob(self.src.blobs, self.src_repo, digest),
                session=session,
                should_stop=self.stopping,
                on_sent=lambda n: self._sent(digest, n),
            )
            self.coordinator.remember(key, digest, self.dst_repo)
            self._blob_done(desc, "uploaded")
        finally:
            if claimed:
                self.coordinator.release_upload(key, digest)

    def _already_there(self, desc: Descriptor) -> bool:
        """True (and counted as skipped) when the blob needs no transfer."""
        if self.dst.blob_exists(self.dst_repo, desc.digest):
            self.coordinator.remember(self.dst.key, desc.digest, self.dst_repo)
            self._blob_done(desc, "skipped")
            return True
        if desc.urls and not self.src.blob_exists(self.src_repo, desc.digest):
            # A foreign (non-distributable) layer: it lives at its URLs, not in registries.
            self._blob_done(desc, "skipped")
            return True
        return False

    def _look_again(
        self, desc: Descriptor, session: UploadSession | None
    ) -> tuple[bool, UploadSession | None]:
        """With the upload claimed: (True, None) when the blob arrived meanwhile (claim
        released); else (False, the session to upload with)."""
        # Another copy may have finished this blob between our first look and
        # the claim: look again, or the same bytes cross the wire twice.
        key, digest = self.dst.key, desc.digest
        where = self.coordinator.locate(key, digest)
        if where == self.dst_repo and self.dst.blob_exists(self.dst_repo, digest):
            # A copy of another tag of this repository brought it meanwhile.
            if session is not None:
                session.cancel()
            self.coordinator.release_upload(key, digest)
            self._blob_done(desc, "skipped")
            return True, None
        if where and where != self.dst_repo:
            if session is not None:
                session.cancel()
            mounted, session = self._try_mount(desc, [where])
            if mounted:
                self.coordinator.release_upload(key, digest)
                return True, None
        return False, session

    def _wait_for_holder(
        self, desc: Descriptor, session: UploadSession | None, ttl: float
    ) -> tuple[bool, UploadSession | None]:
        """Someone else is sending this blob to this target: wait, then mount from there.
        (True, None) when done; else (False, the session to upload with)."""
        if session is not None:
            session.cancel()
            session = None
        where = self.coordinator.wait_for(self.dst.key, desc.digest, ttl)
        if self.dst.blob_exists(self.dst_repo, desc.digest):
            self._blob_done(desc, "skipped")
            return True, None
        if where and where != self.dst_repo:
            mounted, session = self._try_mount(desc, [where])
            if mounted:
                return True, None
        return False, session

    def _mount_candidates(self, digest: str) -> list[str]:
        found = [self.coordinator.locate(self.dst.key, digest)]
        if self.src.key == self.dst.key:
            found.append(self.src_repo)  # same registry: the source repository holds it
        out: list[str] = []
        for repo in found:
            if repo and repo != self.dst_repo and repo not in out:
                out.append(repo)
        return out

    def _try_mount(
        self, desc: Descriptor, candidates: list[str]
    ) -> tuple[bool, UploadSession | None]:
        """(True, None) if mounted; else (False, the open session of a declined mount)."""
        session: UploadSession | None = None
        for repo in candidates:
            if session is not None:
                session.cancel()
                session = None
            try:
                session = self.dst.start_upload(
                    self.dst_repo, mount=desc.digest, from_repository=repo
                )
            except AuthError as exc:
                # No pull right on the other repository: a normal upload still works.
                log.info(
                    "mount of %s from %s refused (%s); uploading instead", desc.digest, repo, exc
                )
                continue
            if session is None:
                self.coordinator.remember(self.dst.key, desc.digest, self.dst_repo)
                self._blob_done(desc, "mounted")
                return True, None
        return False, session

    # -- accounting ---------------------------------------------------------------------
    def _sent(self, digest: str, n: int) -> None:
        with self._lock:
            self.outcome.bytes_transferred += n
            self._inflight[digest] = self._inflight.get(digest, 0) + n
            self._bytes_done += n
        self._emit("blob", digest)

    def _blob_done(self, desc: Descriptor, how: str) -> None:
        with self._lock:
            out = self.outcome
            if how == "skipped":
                out.blobs_skipped += 1
            elif how == "mounted":
                out.blobs_mounted += 1
            else:
                out.blobs_uploaded += 1
            self._blobs_done += 1
            self._bytes_done += max(desc.size, 0) - self._inflight.pop(desc.digest, 0)
        self._emit("blob", desc.digest)

    def _emit(self, phase: str, digest: str | None = None) -> None:
        if not self.progress:
            return
        with self._lock:
            event = ProgressEvent(
                phase,
                self._blobs_total,
                self._blobs_done,
                self._bytes_total,
                max(0, self._bytes_done),
                self.outcome.bytes_transferred,
                digest,
            )
        self.progress(event)
