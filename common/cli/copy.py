"""``ferry copy SRC DST``: copy one image, index or chart between two registries, once.

SRC and DST are ``[http://|https://]host[:port]/repository[:tag|@digest]``.
Credentials come from ``--src-creds``/``--dst-creds`` or the settings
(``FERRY_SRC_CREDS``/``FERRY_DST_CREDS``). The outcome is printed; a failure
prints ``error: <reason>`` and exits 1 (2 for usage errors), never a traceback.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from common.errors import FerryError
from common.registry.client import RegistryClient
from common.registry.copier import copy_artifact
from common.registry.digest import is_digest
from common.registry.media import check_reference, check_repository
from common.registry.outcome import CopyOutcome, CopyStatus, ProgressEvent
from common.registry.retry import RetryPolicy
from common.settings import Settings, get_settings

_MiB = 1024 * 1024


@dataclass(frozen=True)
class ImageReference:
    """A parsed ``host[:port]/repository[:tag|@digest]``."""

    url: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def __str__(self) -> str:
        ref = f"@{self.digest}" if self.digest else f":{self.tag}" if self.tag else ""
        return f"{self.host}/{self.repository}{ref}"


def parse_reference(text: str, *, plain_http: bool = False) -> ImageReference:
    """Parse an image reference; raises ValueError with a one-line explanation."""
    scheme = "http" if plain_http else "https"
    rest = text.strip()
    for prefix in ("docker://", "http://", "https://"):
        if rest.startswith(prefix):
            rest = rest[len(prefix) :]
            if prefix != "docker://":
                scheme = prefix[:-3]
    host, sep, path = rest.partition("/")
    if not sep or not host or not path:
        raise ValueError("expected HOST[:PORT]/REPOSITORY[:TAG]")
    tag = digest = None
    if "@" in path:
        path, digest = path.split("@", 1)
        if not is_digest(digest):
            raise ValueError(f"{digest!r} is not a sha256/sha512 digest")
    else:
        name, colon, maybe_tag = path.rpartition(":")
        if colon and "/" not in maybe_tag:
            path, tag = name, maybe_tag
    try:
        check_repository(path)
        if tag is not None:
            check_reference(tag)
    except FerryError as exc:
        raise ValueError(str(exc)) from None
    return ImageReference(f"{scheme}://{host.lower()}", path, tag, digest)


def _creds(value: str | None, option: str) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise click.BadParameter("expected USER:PASSWORD", param_hint=option)
    return user, password


class _ProgressLine:
    """One self-rewriting stderr line: bytes and blobs done, and the rate."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False
        self._lock = threading.Lock()

    def __call__(self, ev: ProgressEvent) -> None:
        now = time.monotonic()
        with self._lock:
            if ev.phase == "done":
                if self.shown:
                    click.echo("", err=True)
                return
            if now - self.last < 0.2 and ev.phase == "blob":
                return
            self.last = now
            rate = ev.bytes_transferred / _MiB / max(now - self.started, 1e-6)
            click.echo(
                f"\r{ev.bytes_done / _MiB:9.1f}/{ev.bytes_total / _MiB:.1f} MiB  "
                f"{ev.blobs_done}/{ev.blobs_total} blobs  {rate:7.1f} MiB/s  ",
                err=True,
                nl=False,
            )
            self.shown = True


def _summary(o: CopyOutcome, src: ImageReference, dst: ImageReference) -> str:
    line = f"{o.status} {src} -> {dst}"
    if o.digest:
        line += f"\n  digest {o.digest} ({o.kind})"
    if o.status == CopyStatus.COPIED:
        rate = o.bytes_transferred / _MiB / o.seconds if o.seconds else 0.0
        line += (
            f"\n  blobs: {o.blobs_uploaded} uploaded, {o.blobs_mounted} mounted, "
            f"{o.blobs_skipped} already there; {o.bytes_transferred / _MiB:.1f} MiB sent "
            f"in {o.seconds:.2f} s ({rate:.1f} MiB/s)"
        )
    if o.note:
        line += f"\n  note: {o.note}"
    return line


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _count_option(name: str, most: int, default: int, help_text: str) -> Any:
    """A whole-number option from 1 to ``most`` whose help shows the default."""
    return click.option(
        name, type=click.IntRange(1, most), default=default, show_default=True, help=help_text
    )


@click.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option(
    "--src-creds", metavar="USER:PASSWORD", help="Source credentials (default: FERRY_SRC_CREDS)."
)
@click.option(
    "--dst-creds", metavar="USER:PASSWORD", help="Target credentials (default: FERRY_DST_CREDS)."
)
@click.option(
    "--override", is_flag=True, help="Replace the target tag when it points to something else."
)
@click.option(
    "--plain-http",
    is_flag=True,
    help="Use http:// for both registries (or prefix one reference with http://).",
)
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
@_count_option("--parallel", 32, 4, "Blobs uploaded at the same time.")
@_count_option("--retries", 20, 5, "Attempts per request on connection errors, 5xx and 429.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress display (default: when stderr is a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def copy_command(
    src: str,
    dst: str,
    src_creds: str | None,
    dst_creds: str | None,
    override: bool,
    plain_http: bool,
    insecure: bool,
    parallel: int,
    retries: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Copy SRC to DST (HOST[:PORT]/REPOSITORY[:TAG]), exactly and idempotently."""
    s, d = _references(src, dst, plain_http)
    try:
        settings = get_settings()
    except FerryError as exc:
        _fail(str(exc))
    src_user, src_pw = _creds(src_creds or settings.src_creds, "--src-creds")
    dst_user, dst_pw = _creds(dst_creds or settings.dst_creds, "--dst-creds")
    show = sys.stderr.isatty() if progress is None else progress

    stop = threading.Event()
    with _ctrl_c_sets(stop):
        try:
            retry = RetryPolicy(attempts=retries)
            with (
                _client(s.url, src_user, src_pw, settings, insecure, retry) as src_client,
                _client(d.url, dst_user, dst_pw, settings, insecure, retry) as dst_client,
            ):
                outcome = copy_artifact(
                    src_client,
                    s.repository,
                    s.digest or s.tag or "latest",
                    dst_client,
                    d.repository,
                    d.tag or "latest",
                    override=override,
                    should_stop=stop.is_set,
                    progress=_ProgressLine() if show else None,
                    max_parallel_blobs=parallel,
                )
        except FerryError as exc:
            _fail(str(exc))
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2))
    elif outcome.ok:
        click.echo(_summary(outcome, s, d))
    if not outcome.ok:
        _fail(outcome.reason or str(outcome.status))


def _references(src: str, dst: str, plain_http: bool) -> tuple[ImageReference, ImageReference]:
    """SRC and DST parsed, with the defaults filled in (tag "latest", DST's tag from SRC)."""
    try:
        s = parse_reference(src, plain_http=plain_http)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SRC") from None
    try:
        d = parse_reference(dst, plain_http=plain_http)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DST") from None
    if d.digest:
        raise click.BadParameter("the target must be a tag, not a digest", param_hint="DST")
    if d.tag is None:
        if s.tag is None and s.digest:
            raise click.BadParameter("give a tag when SRC is a digest", param_hint="DST")
        d = ImageReference(d.url, d.repository, s.tag or "latest")
    if s.tag is None and s.digest is None:
        s = ImageReference(s.url, s.repository, "latest")
    return s, d


def _client(
    url: str,
    user: str | None,
    password: str | None,
    settings: Settings,
    insecure: bool,
    retry: RetryPolicy,
) -> RegistryClient:
    return RegistryClient(
        url,
        username=user,
        password=password,
        settings=settings,
        verify_tls=not insecure,
        retry=retry,
    )


@contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While inside, the first Ctrl-C sets ``stop``: uploads are cancelled cleanly and the
    target tag is left unchanged. Only the main thread can install signal handlers."""
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    copy_command(prog_name="ferry copy")
