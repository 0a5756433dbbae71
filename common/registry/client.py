"""RegistryClient: one registry endpoint (Distribution API v2 / OCI distribution-spec 1.1).

One ``requests.Session`` per client keeps connections alive; every request has
a timeout and is retried with exponential backoff and jitter on connection
errors, 5xx and 429 (honouring Retry-After), never on 400/401/403/404, which
become errors a person can act on. Every host contacted (the registry, token
realms, redirect and upload targets) passes :func:`common.security.netpolicy.check_url`.
Blob operations live in :mod:`common.registry.blobs`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from common.errors import (
    AuthError,
    BlobNotFound,
    DigestMismatch,
    FerryError,
    ManifestInvalid,
    ManifestNotFound,
    PermissionDenied,
    RegistryError,
    RegistryUnavailable,
    RepositoryNotFound,
)
from common.registry import auth as _auth
from common.registry.auth import DEFAULT_TOKEN_CACHE, Authenticator, Scopes, TokenCache
from common.registry.blobs import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CHUNKED_THRESHOLD,
    DEFAULT_MONOLITHIC_THRESHOLD,
    BlobOps,
)
from common.registry.media import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestRef,
    check_reference,
    check_repository,
    is_digest,
)
from common.security.netpolicy import check_url, parse_registry_url
from common.settings import Settings, get_settings

log = logging.getLogger("ferry.registry")

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds
MAX_LISTING_PAGE_BYTES = 64 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NOT_FOUND = {
    "MANIFEST_UNKNOWN": ManifestNotFound,
    "BLOB_UNKNOWN": BlobNotFound,
    "NAME_UNKNOWN": RepositoryNotFound,
}
_RACY_MANIFEST_CODES = frozenset({"DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"})
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


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (from 1): jittered, capped."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        wait = base / 2 + random.uniform(0, base / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def _retryable_status(status: int) -> bool:
    return status == 429 or (500 <= status < 600 and status not in (501, 505))


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_code(resp: requests.Response) -> str:
    """The first OCI error code of an answer already read (``stream=False``)."""
    try:
        return str(resp.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _path(url: str) -> str:
    """A URL without its query: upload state and signed URLs stay out of logs."""
    return urlsplit(url).path


def read_limited(resp: requests.Response, limit: int) -> bytes:
    """The (decoded) body of ``resp``, refusing answers larger than ``limit`` bytes."""
    buf = bytearray()
    try:
        for chunk in resp.iter_content(65536):
            buf += chunk
            if len(buf) > limit:
                raise RegistryError(
                    f"answer from {urlsplit(resp.url).netloc} exceeds {limit} bytes"
                )
    except requests.RequestException as exc:
        raise RegistryUnavailable(
            f"{urlsplit(resp.url).netloc}: answer broke off: {type(exc).__name__}"
        ) from None
    finally:
        resp.close()
    return bytes(buf)


class RegistryClient(BlobOps):
    """A client for one registry; thread-safe; close it (or use ``with``) when done."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        verify_tls: bool | str = True,
        settings: Settings | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        pool_size: int = 16,
        token_cache: TokenCache | None = None,
        monolithic_threshold: int = DEFAULT_MONOLITHIC_THRESHOLD,
        chunked_threshold: int | None = DEFAULT_CHUNKED_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        scheme, host, _port = parse_registry_url(url)
        netloc = urlsplit(url).netloc.lower()
        self.url = f"{scheme}://{netloc}"
        self.display = netloc
        self.host = host
        self.settings = settings or get_settings()
        check_url(self.url, self.settings)
        self._checked_origins = {self.url}
        self._origins_lock = threading.Lock()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.verify_tls = verify_tls
        self.session = requests.Session()
        # Proxies, CA bundles and .netrc credentials come from explicit settings only.
        self.session.trust_env = False
        self.session.headers["User-Agent"] = "ferry/0.1"
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._secrets: set[str] = set()
        self.auth = Authenticator(
            self.url,
            username=username,
            password=password,
            settings=self.settings,
            send=self._token_send,
            cache=token_cache or DEFAULT_TOKEN_CACHE,
            secrets=self._secrets,
        )
        BlobOps.__init__(
            self,
            monolithic_threshold=monolithic_threshold,
            chunked_threshold=chunked_threshold,
            chunk_size=chunk_size,
        )

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Identifies the registry (not the credentials): ``scheme://host[:port]``."""
        return self.url

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient({self.url!r}, username={self.auth.username!r})"

    def scrub(self, text: str) -> str:
        """``text`` with every known secret (password, tokens) masked."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    # -- transport ---------------------------------------------------------------------
    def _check_origin(self, url: str) -> None:
        origin = _origin(url)
        with self._origins_lock:
            if origin in self._checked_origins:
                return
        check_url(url, self.settings)
        with self._origins_lock:
            self._checked_origins.add(origin)

    def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: Any,
        data: Any,
        stream: bool,
        follow: bool,
    ) -> requests.Response:
        first = _origin(url)
        for _ in range(6):
            self._check_origin(url)
            if _origin(url) != first:
                # A redirect to another origin never carries our credentials.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            resp = self.session.request(
                method,
                url,
                headers=headers,
                params=params,
                data=data,
                stream=stream,
                timeout=self.timeout,
                allow_redirects=False,
                verify=self.verify_tls,
            )
            if not (follow and resp.status_code in _REDIRECTS and resp.headers.get("Location")):
                return resp
            url = urljoin(resp.url, resp.headers["Location"])
            params = None
            resp.close()
            log.debug("%s redirected to %s%s", method, _origin(url), _path(url))
        raise RegistryError(f"{self.display}: too many redirects for {method} {_path(url)}")

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Scopes = frozenset(),
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        stream: bool = False,
        retry: bool = True,
        follow: bool = False,
        authenticate: bool = True,
        read_limit: int | None = None,
    ) -> requests.Response:
        """Send one request with auth, retries and policy; any final status is returned.

        ``retry=False`` is for bodies that cannot be replayed (generators): then
        connection errors raise at once and a 401 is not retried. With
        ``read_limit`` the body (at most that many bytes) is read inside the retry
        loop, so an answer that breaks off half-way is retried too.
        """
        if read_limit is not None:
            stream = True
        if not url.startswith(("http://", "https://")):
            url = self.url + url
        attempt = 0
        # One retry to learn the scheme (nothing was sent), one to refresh a refused token.
        learn_left = refresh_left = 1
        try:
            while True:
                attempt += 1
                sent = self.auth.header(scopes) if authenticate and _origin(url) == self.url else {}
                try:
                    resp = self._once(
                        method, url, {**(headers or {}), **sent}, params, data, stream, follow
                    )
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                ) as exc:
                    reason = f"{type(exc).__name__}"
                    if not retry or attempt >= self.retry.attempts:
                        raise RegistryUnavailable(
                            f"{self.display}: {method} {_path(url)} failed after {attempt} "
                            f"attempt(s): {reason}"
                        ) from None
                    wait = self.retry.delay(attempt)
                    log.info(
                        "%s %s: %s; retry %d in %.2fs", method, _path(url), reason, attempt, wait
                    )
                    time.sleep(wait)
                    continue
                except requests.RequestException as exc:
                    raise RegistryError(
                        f"{self.display}: {method} {_path(url)}: {type(exc).__name__}"
                    ) from None
                log.debug("%s %s%s -> %d", method, _origin(url), _path(url), resp.status_code)
                budget = refresh_left if sent else learn_left
                replayable = data is None or isinstance(data, bytes | bytearray)
                if resp.status_code == 401 and authenticate and budget and (retry or replayable):
                    new_scopes = self.auth.on_unauthorized(resp, scopes, sent)
                    if new_scopes is not None:
                        resp.close()
                        if sent:
                            refresh_left -= 1
                        else:
                            learn_left -= 1
                        scopes = new_scopes
                        attempt -= 1
                        continue
                if _retryable_status(resp.status_code) and retry and attempt < self.retry.attempts:
                    wait = self.retry.delay(attempt, _retry_after(resp))
                    log.info(
                        "%s %s: %d; retry %d in %.2fs",
                        method,
                        _path(url),
                        resp.status_code,
                        attempt,
                        wait,
                    )
                    resp.close()
                    time.sleep(wait)
                    continue
                if read_limit is not None:
                    try:
                        resp._content = read_limited(resp, read_limit)
                    except RegistryUnavailable as exc:
                        if not retry or attempt >= self.retry.attempts:
                            raise
                        wait = self.retry.delay(attempt)
                        log.info(
                            "%s %s: %s; retry %d in %.2fs", method, _path(url), exc, attempt, wait
                        )
                        time.sleep(wait)
                        continue
                resp.attempts = attempt  # type: ignore[attr-defined]
                return resp
        except FerryError as exc:
            if getattr(exc, "origin", None) is None:
                exc.origin = self  # type: ignore[attr-defined]
            exc.message = self.scrub(exc.message)
            exc.args = (exc.message,)
            raise

    def _token_send(
        self, method: str, url: str, headers: dict[str, str], params: list[tuple[str, str]]
    ) -> requests.Response:
        return self.request(
            method, url, headers=headers, params=params, authenticate=False, read_limit=1024 * 1024
        )

    def fail(
        self,
        resp: requests.Response,
        what: str,
        *,
        repository: str | None = None,
        writing: bool = False,
        missing: type[RegistryError] = RegistryError,
        manifest_put: bool = False,
    ) -> RegistryError:
        """The error a person can act on for an unexpected answer about ``what`` (a noun)."""
        code, message = "", ""
        try:
            body = json.loads(read_limited(resp, 256 * 1024) or b"{}")
            first = (body.get("errors") or [{}])[0]
            code, message = str(first.get("code") or ""), str(first.get("message") or "")
        except (ValueError, AttributeError, IndexError, TypeError, RegistryError):
            pass
        status = resp.status_code
        method = resp.request.method if resp.request is not None else ""
        detail = self.scrub(
            f"{status}{' ' + code if code else ''}{': ' + message if message else ''}"[:300]
        )
        right = "push" if writing else "pull"
        challenge = next(
            iter(_auth.parse_challenges(resp.headers.get("WWW-Authenticate", ""))), None
        )
        scope_error = bool(challenge and challenge.params.get("error") == "insufficient_scope")
        exc: RegistryError
        if status == 401 and scope_error and repository:
            exc = PermissionDenied(
                f"credentials for {self.display} have no {right} permission on {repository}"
            )
        elif status == 401:
            if self.auth.has_credentials:
                exc = AuthError(
                    f"{self.display} refused the credentials for user "
                    f"{self.auth.username} ({detail})"
                )
            else:
                exc = AuthError(f"{self.display} requires credentials ({detail})")
        elif status == 403:
            target = f" on {repository}" if repository else f" for {what}"
            exc = PermissionDenied(
                f"credentials for {self.display} have no {right} permission{target} ({detail})"
            )
        elif status == 404:
            exc = _NOT_FOUND.get(code, missing)(f"{self.display}: {what} not found ({detail})")
        elif _retryable_status(status):
            tries = getattr(resp, "attempts", 1)
            exc = RegistryUnavailable(
                f"{self.display}: {method} {what} failed after {tries} attempt(s) ({detail})"
            )
        elif code == "DIGEST_INVALID":
            exc = DigestMismatch(f"{self.display} refused {what}: wrong digest ({detail})")
        elif manifest_put or code in _MANIFEST_CODES:
            exc = ManifestInvalid(f"{self.display} refused {what} ({detail})")
        else:
            exc = RegistryError(f"{self.display} refused {method} {what} ({detail})")
        exc.origin = self  # type: ignore[attr-defined]
        return exc

    # -- checks ------------------------------------------------------------------------
    def ping(self) -> None:
        """Succeeds when the registry speaks API v2 and accepts the credentials."""
        resp = self.request("GET", "/v2/")
        if resp.status_code != 200:
            raise self.fail(resp, "the API root /v2/")
        resp.close()

    def check_push(self, repository: str) -> None:
        """Succeeds when the credentials may push to ``repository`` (an upload is started
        and cancelled; nothing stays on the registry)."""
        session = self.start_upload(check_repository(repository))
        if session is not None:
            session.cancel()

    # -- listing -----------------------------------------------------------------------
    def _pages(
        self,
        path: str,
        key: str,
        scopes: Scopes,
        page_size: int,
        last: str | None = None,
        repository: str | None = None,
    ) -> Iterator[list[str]]:
        n = page_size
        url = self.url + path
        params: dict[str, Any] | None = {"n": n, **({"last": last} if last else {})}
        prev_last: str | None = None
        while True:
            resp = self.request(
                "GET", url, params=params, scopes=scopes, read_limit=MAX_LISTING_PAGE_BYTES
            )
            if resp.status_code == 400 and params and params.get("n", 0) > 1:
                # Registries cap n (Distribution 2.8 refuses n > 1000): ask for less.
                resp.close()
                n = params["n"] = params["n"] // 2
                continue
            if resp.status_code != 200:
                what = f"repository {repository}" if repository else "the catalog"
                raise self.fail(resp, what, repository=repository, missing=RepositoryNotFound)
            try:
                items = json.loads(resp.content).get(key) or []
            except (ValueError, AttributeError):
                raise RegistryError(
                    f"{self.display}: {path} answered with malformed JSON"
                ) from None
            if not items or items[-1] == prev_last:
                return  # empty page, or a registry that ignores `last`
            yield items
            prev_last = items[-1]
            link = resp.links.get("next", {}).get("url")
            if link:
                url, params = urljoin(resp.url, link), None
                if _origin(url) != self.url:
                    log.warning("%s: not following a listing link to another host", self.display)
                    return
            elif params is not None and len(items) >= n:
                params = {"n": n, "last": items[-1]}
            else:
                return

    def iter_repositories(self, prefix: str | None = None, page_size: int = 100) -> Iterator[str]:
        """Repository names from the catalog, one page in memory at a time.

        With ``prefix`` (a namespace or deeper path) only repositories below it are
        yielded, and ``prefix`` itself unless it ends with "/"; the listing starts
        just before the prefix and stops once past it.
        """
        p = prefix.strip("/") if prefix else ""
        below_only = bool(prefix and prefix.endswith("/"))
        start = _just_before(p) if p else None
        for page in self._pages("/v2/_catalog", "repositories", _auth.CATALOG, page_size, start):
            for repo in page:
                if not p or repo.startswith(p + "/") or (repo == p and not below_only):
                    yield repo
                elif repo > p and not repo.startswith(p):
                    return

    def iter_tags(self, repository: str, page_size: int = 100) -> Iterator[str]:
        """Tags of ``repository``, following pagination when the registry offers it."""
        check_repository(repository)
        for page in self._pages(
            f"/v2/{repository}/tags/list",
            "tags",
            _auth.pull(repository),
            page_size,
            repository=repository,
        ):
            yield from page

    # -- manifests ---------------------------------------------------------------------
    def head_manifest(self, repository: str, reference: str) -> ManifestRef | None:
        """Digest, media type and size of a manifest, or None when it does not exist."""
        check_repository(repository)
        check_reference(reference)
        resp = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scopes=_auth.pull(repository),
            headers={"Accept": MANIFEST_ACCEPT},
            follow=True,
        )
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.fail(resp, f"manifest {repository}:{reference}", repository=repository)
        digest = resp.headers.get("Docker-Content-Digest", "")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if is_digest(reference):
            digest = reference
        if not is_digest(digest) or not media_type:
            # Some registries omit the digest on HEAD: read the manifest instead.
            try:
                m = self.get_manifest(repository, reference)
            except ManifestNotFound:
                return None
            return ManifestRef(m.digest, m.media_type, len(m.raw))
        return ManifestRef(digest, media_type, int(resp.headers.get("Content-Length") or 0))

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes and Content-Type; its digest is verified on the bytes."""
        check_repository(repository)
        check_reference(reference)
        what = (
            f"manifest {repository}:{reference}"
            if not is_digest(reference)
            else f"manifest {repository}@{reference}"
        )
        resp = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scopes=_auth.pull(repository),
            headers={"Accept": MANIFEST_ACCEPT},
            follow=True,
            read_limit=MAX_MANIFEST_BYTES,
        )
        if resp.status_code != 200:
            raise self.fail(resp, what, repository=repository, missing=ManifestNotFound)
        header_digest = resp.headers.get("Docker-Content-Digest", "")
        content_type = resp.headers.get("Content-Type")
        raw = resp.content
        expected = (
            reference
            if is_digest(reference)
            else (header_digest if is_digest(header_digest) else None)
        )
        try:
            return Manifest.from_bytes(raw, content_type, expected)
        except DigestMismatch as exc:
            err = DigestMismatch(f"{self.display}: {what}: {exc}")
            err.origin = self  # type: ignore[attr-defined]
            raise err from None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Push the exact bytes under ``reference`` (tag or digest); returns the digest."""
        check_repository(repository)
        check_reference(reference)
        what = (
            f"manifest {repository}:{reference}"
            if not is_digest(reference)
            else f"manifest {repository}@{reference}"
        )
        for attempt in range(1, self.retry.attempts + 1):
            resp = self.request(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                scopes=_auth.push(repository),
                headers={"Content-Type": manifest.media_type},
                data=manifest.raw,
            )
            resp.close()
            if resp.status_code in (200, 201, 202):
                break
            code = _error_code(resp)
            if (
                resp.status_code == 400
                and code in _RACY_MANIFEST_CODES
                and attempt < min(3, self.retry.attempts)
            ):
                # Our bytes hash right, so this is the registry tripping over a concurrent
                # push of the same content (Distribution writes link files non-atomically).
                wait = self.retry.delay(attempt)
                log.info("%s for %s (concurrent push?); retry in %.2fs", code, what, wait)
                time.sleep(wait)
                continue
            raise self.fail(resp, what, repository=repository, writing=True, manifest_put=True)
        stored = resp.headers.get("Docker-Content-Digest")
        if stored and is_digest(stored) and stored != manifest.digest:
            err = DigestMismatch(f"{self.display} stored {what} as {stored}, not {manifest.digest}")
            err.origin = self  # type: ignore[attr-defined]
            raise err
        return manifest.digest


def _just_before(prefix: str) -> str:
    """A `last=` value sorting right before ``prefix`` for repository-name characters."""
    return prefix[:-1] + chr(ord(prefix[-1]) - 1) + "~"
