"""Copy of one item: a source repository:tag to a target repository:tag.

Follows DESIGN.md "Copy of one item": resolve the source; check the target
tag (same digest: ``up-to-date``; different and override off: ``kept``,
nothing written); then every blob (:mod:`common.registry.blob_copy`: known
present: skip; held by another repository of the target: mount; else stream
with digest verification); then index children by digest; the manifest by
tag last, byte for byte. Idempotent and safe to run twice at once:
everything is addressed by digest and the tag is written last. Expected
registry failures become a ``failed`` outcome.

A caller that already read the source manifest and the target tag (the sync
plan) passes them as :class:`Prefetched`, and the copy does not ask again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

from common.errors import FerryError, ManifestInvalid
from common.registry.blob_copy import MOUNTED, SKIPPED, BlobCopy
from common.registry.client import RegistryClient
from common.registry.coordination import DEFAULT_COORDINATOR, BlobCoordinator
from common.registry.media import Descriptor, Manifest, classify
from common.registry.outcome import CopyOutcome, CopyStatus, ProgressEvent
from common.registry.uploader import Stopped

log = logging.getLogger("ferry.registry.copier")

T = TypeVar("T")
R = TypeVar("R")
MAX_INDEX_DEPTH = 3
# One end of a copy: the registry, the repository, and the reference (source) or tag (target).
_End = tuple[RegistryClient, str, str]


@dataclass(frozen=True)
class Prefetched:
    """What the caller read already: the source manifest, and the digest the target tag
    pointed to then (None: the tag did not exist)."""

    manifest: Manifest
    target_digest: str | None


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
    prefetched: Prefetched | None = None,
) -> CopyOutcome:
    """Copy ``src_repo:src_ref`` to ``dst_repo:dst_tag``; registry failures become an outcome.

    With ``prefetched``, its manifest is what gets copied and its target digest
    decides up-to-date and kept, without asking either registry again.
    """
    job = _Copy(
        (src, src_repo, src_ref),
        (dst, dst_repo, dst_tag),
        override=override,
        coordinator=coordinator or DEFAULT_COORDINATOR,
        should_stop=should_stop,
        progress=progress,
        expected_digest=expected_digest,
        parallel=max(1, max_parallel_blobs),
        prefetched=prefetched,
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
        prefetched: Prefetched | None = None,
    ) -> None:
        self.src, self.src_repo, self.src_ref = src
        self.dst, self.dst_repo, self.dst_tag = dst
        self.override, self.coordinator = override, coordinator
        self.should_stop, self.progress = should_stop, progress
        self.expected_digest, self.parallel = expected_digest, parallel
        self.prefetched = prefetched
        self.outcome = CopyOutcome(status=CopyStatus.FAILED)
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._blobs_total = self._blobs_done = self._bytes_total = self._bytes_done = 0
        self._inflight: dict[str, int] = {}
        self.blobs = BlobCopy(
            self.src,
            self.src_repo,
            self.dst,
            self.dst_repo,
            coordinator,
            self.stopping,
            self._blob_done,
            self._sent,
        )

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
        top, there = self._source_and_target()
        out.digest, out.kind = top.digest, classify(top)
        if self.expected_digest and top.digest != self.expected_digest:
            out.note = (
                f"{self.src_repo}:{self.src_ref} now points to {top.digest}, not "
                f"{self.expected_digest}; copied what it points to now"
            )
        if there == top.digest:
            out.status = CopyStatus.UP_TO_DATE
            return
        if there and not self.override:
            out.status = CopyStatus.KEPT
            out.target_digest = there
            out.note = ((out.note + "; ") if out.note else "") + (
                f"target tag points to {there} and override is off"
            )
            return
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="ferry-copy") as pool:
            levels, blobs = self._plan(pool, top)
            try:
                self._transfer(pool, top, levels, blobs)
            except ManifestInvalid:
                if not self.blobs.trusted:
                    raise
                # A blob the coordinator placed in the repository is not there (deleted,
                # or the registry was reset): copy again, checking every blob.
                log.info("target refused a manifest of %s; checking every blob", self.dst_repo)
                self.blobs.trust, self.blobs.trusted = False, []
                self._transfer(pool, top, levels, blobs)
        out.status = CopyStatus.COPIED

    def _source_and_target(self) -> tuple[Manifest, str | None]:
        """The source manifest and the target tag's digest: prefetched, or asked for."""
        if self.prefetched is not None:
            return self.prefetched.manifest, self.prefetched.target_digest
        top = self.src.get_manifest(self.src_repo, self.src_ref)
        existing = self.dst.head_manifest(self.dst_repo, self.dst_tag)
        return top, existing.digest if existing else None

    def _transfer(
        self,
        pool: ThreadPoolExecutor,
        top: Manifest,
        levels: list[list[Manifest]],
        blobs: list[Descriptor],
    ) -> None:
        """Blobs, then child manifests deepest first, then the tag."""
        self._copy_blobs(pool, blobs)
        self._emit("manifests")
        for level in reversed(levels):  # deepest first: parents need their children
            self._map(pool, self._push_child, level)
        if self.stopping():
            raise Stopped()
        self.dst.put_manifest(self.dst_repo, self.dst_tag, top)
        with self._lock:
            self.outcome.manifests_pushed += 1

    # -- plan ---------------------------------------------------------------------------
    def _plan(
        self, pool: ThreadPoolExecutor, top: Manifest
    ) -> tuple[list[list[Manifest]], list[Descriptor]]:
        """Child manifests (by level) and the blobs they all need."""
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
            level = self._map(pool, self._child, wanted)
            levels.append(level)
        return levels, list(blobs.values())

    def _child(self, desc: Descriptor) -> Manifest:
        # No HEAD on the target first: its blobs cost nothing when known there, and
        # pushing a manifest the target has is harmless.
        if self.stopping():
            raise Stopped()
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
            out = self.outcome  # a second pass counts afresh (bytes sent stay sent)
            out.blobs_skipped = out.blobs_mounted = out.blobs_uploaded = 0
            out.manifests_pushed = self._blobs_done = self._bytes_done = 0
            self._inflight.clear()
            self._blobs_total = len(blobs)
            self._bytes_total = sum(max(b.size, 0) for b in blobs)
        self._emit("blobs")
        self._map(pool, self.blobs.copy, blobs)

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
            if how == SKIPPED:
                out.blobs_skipped += 1
            elif how == MOUNTED:
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
