"""Transport: how every request reaches one registry (Distribution API v2 / OCI 1.1).

One set of urllib3 pools per registry keeps connections alive (used directly:
see :mod:`common.registry.connect`); every request has a timeout. Whether and
when to try again is decided by one
:class:`~common.registry.retry.RetryPolicy` (connection errors, answers that
break off, 5xx and 429 with Retry-After); the Authorization header and what a
401 teaches come from the request's :class:`~common.registry.auth.AuthStep`.
Every host contacted (the registry, token realms, redirect and upload
targets) passes :func:`common.security.netpolicy.check_url`; every new
connection is checked again on the address it connects to
(:mod:`common.registry.connect`, no DNS rebinding); a redirect to another host
must pass :func:`~common.security.netpolicy.check_redirect` and never carries
our credentials; upload sessions stay on the registry's origin.

Every try runs under a :class:`~common.registry.deadline.Guard`: an answer
that is read whole (manifests, pages, errors, tokens) must be complete within
``deadline`` seconds, however slowly it trickles; a stream (a blob body, an
upload) must make progress every ``stall`` seconds; a ``stop`` predicate cuts
the connection as soon as it turns true. Bodies are read with a cap: the
caller's ``read_limit``, or :data:`SMALL_ANSWER_BYTES` (the rest is dropped).
A thread may set an overall budget (:func:`common.registry.deadline.budget`).

Errors leave the transport with every known secret masked and ``origin`` set
to the transport, so a copy can say whether its source or its target failed.
The blob reader, the upload session, the manifest client and the listing use
a transport by composition; ``Transport.fail`` turns an unexpected answer
into the error a person can act on (:mod:`common.registry.refusals`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3

from common.errors import FerryError, RegistryError, RegistryUnavailable
from common.registry.auth import DEFAULT_TOKEN_CACHE, Authenticator, AuthStep, Scopes, TokenCache
from common.registry.connect import policy_pools
from common.registry.deadline import STOP, Guard, Stopped, budget_end
from common.registry.refusals import Refusals
from common.registry.reply import Reply, read_limited
from common.registry.retry import RetryPolicy
from common.registry.urls import origin_of, path_of, with_params
from common.security.netpolicy import check_redirect, check_url, parse_registry_url
from common.settings import Settings, get_settings

log = logging.getLogger("ferry.registry")

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds
# A stream must move this much per settings.registry_stall seconds (see the module doc).
STREAM_PROGRESS_BYTES = 64 * 1024
# Answers nobody asked to read in full (errors, upload replies) are kept up to this.
SMALL_ANSWER_BYTES = 64 * 1024
MAX_HOPS = 6  # the request and up to five redirects
MAX_TOKEN_ANSWER_BYTES = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The connection failed (refused, reset, timed out, broke off, TLS): there is no answer.
_BROKEN = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.SSLError,
    urllib3.exceptions.ProxyError,
    OSError,
)
_HEADERS = {"User-Agent": "ferry/0.1"}


@dataclass(frozen=True)
class _Call:
    """One request as the caller asked for it, before auth, redirects and retries."""

    method: str
    url: str
    scopes: Scopes
    headers: dict[str, str]
    params: Any
    data: Any
    stream: bool
    retry: bool
    follow: bool
    authenticate: bool
    read_limit: int | None
    stop: Callable[[], bool] | None

    @property
    def replayable(self) -> bool:
        """True when the body can be sent again (none, or bytes; not a generator)."""
        return self.data is None or isinstance(self.data, bytes | bytearray)


@dataclass(frozen=True)
class _Again:
    """The policy's verdict on a failed try: wait ``wait`` seconds, then try again."""

    why: object  # what failed, for the log line: an exception name, a status, an error
    wait: float


class Transport:
    """Requests to one registry with auth, retries and network policy; thread-safe."""

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
        # Kept alive per origin: a threads worker runs 8 copies of up to 4 blobs each.
        pool_size: int = 32,
        token_cache: TokenCache | None = None,
        deadline: float | None = None,
        stall: float | None = None,
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
        # Unless given: FERRY_REGISTRY_DEADLINE and FERRY_REGISTRY_STALL.
        self.deadline = float(deadline or self.settings.registry_deadline)
        self.stall = float(stall or self.settings.registry_stall)
        self.retry = retry or RetryPolicy()
        # Proxies, CA bundles and credentials come from explicit settings only (urllib3
        # reads no environment).
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.pools = policy_pools(
            self.settings,
            maxsize=pool_size,
            verify_tls=verify_tls,
            timeout=urllib3.Timeout(connect=connect, read=read),
        )
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
        self._refusals = Refusals(self.display, self.auth, self.scrub, origin=self)
        # ``fail(reply, what, ...)``: the error a person can act on for an unexpected
        # answer about ``what`` (see :meth:`Refusals.explain`).
        self.fail = self._refusals.explain

    def close(self) -> None:
        """Release pooled connections."""
        self.pools.clear()

    def scrub(self, text: str) -> str:
        """``text`` with every known secret (password, tokens) masked."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

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
        stop: Callable[[], bool] | None = None,
    ) -> Reply:
        """Send one request with auth, retries and policy; any final status is returned.

        ``retry=False`` is for bodies that cannot be replayed (generators): then
        connection errors raise at once and a 401 is not retried. With
        ``read_limit`` the body (at most that many bytes) is read inside the retry
        loop, so an answer that breaks off half-way is retried too. With ``stream``
        the body is left to the caller (close the reply); otherwise at most
        :data:`SMALL_ANSWER_BYTES` of it are kept. ``stop`` turning true cuts the
        request off and raises :class:`~common.registry.deadline.Stopped`.
        """
        if not url.startswith(("http://", "https://")):
            url = self.url + url
        call = _Call(
            method,
            url,
            scopes,
            headers or {},
            params,
            data,
            stream,
            retry,
            follow,
            authenticate,
            read_limit,
            stop,
        )
        try:
            return self._send(call)
        except FerryError as exc:
            if exc.origin is None:
                exc.origin = self
            exc.message = self.scrub(exc.message)
            exc.args = (exc.message,)
            raise

    def _send(self, call: _Call) -> Reply:
        """The retry loop: one try after another until one gives a final answer."""
        step = AuthStep(self.auth, call.scopes) if call.authenticate else None
        attempt = 0
        while True:
            attempt += 1
            result = self._try(call, step, attempt)
            if isinstance(result, Reply):
                return result
            if result is None:
                attempt -= 1  # a 401 taught the scheme or cost a token: not a retry
                continue
            log.info(
                "%s %s: %s; retry %d in %.2fs",
                call.method,
                path_of(call.url),
                result.why,
                attempt,
                result.wait,
            )
            end = budget_end()
            if end is not None and time.monotonic() + result.wait >= end:
                raise RegistryUnavailable(
                    f"{self.display}: {call.method} {path_of(call.url)}: no time left to "
                    f"try again ({result.why})"
                )
            time.sleep(result.wait)

    def _try(self, call: _Call, step: AuthStep | None, attempt: int) -> Reply | _Again | None:
        """One try under its guard: the final answer, a wait before the next try, or None
        to resend at once. Raises when the policy gives up on a broken connection or body,
        when the guard cut the try off, or Stopped."""
        guard = self._guard(call)
        try:
            with guard:
                result = self._guarded(call, step, attempt, guard)
        except BaseException:
            guard.close()
            raise
        if not isinstance(result, Reply) or result.body is not None:
            guard.close()  # a streamed reply closes its guard when it is closed
        return result

    def _guard(self, call: _Call) -> Guard:
        streaming = (call.stream and call.read_limit is None) or not call.replayable
        seconds = self.stall if streaming else self.deadline
        if isinstance(call.data, bytes | bytearray):
            # A body we send (a blob, a chunk) may go as slowly as a stream may.
            seconds += len(call.data) * self.stall / STREAM_PROGRESS_BYTES
        expires, cap = time.monotonic() + seconds, budget_end()
        return Guard(expires if cap is None else min(expires, cap), call.stop, cap=cap)

    def _cut_off(self, call: _Call, guard: Guard) -> Exception:
        """What a try cut off by its guard raises."""
        if guard.tripped == STOP:
            return Stopped()
        return RegistryUnavailable(
            f"{self.display}: {call.method} {path_of(call.url)} did not finish within "
            f"{guard.seconds:.0f} s",
            origin=self,
        )

    def _guarded(
        self, call: _Call, step: AuthStep | None, attempt: int, guard: Guard
    ) -> Reply | _Again | None:
        sent = step.header() if step and origin_of(call.url) == self.url else {}
        path = path_of(call.url)
        try:
            answer = self._exchange(call, {**_HEADERS, **call.headers, **sent}, guard)
        except _BROKEN as exc:
            if guard.tripped:
                raise self._cut_off(call, guard) from None
            wait = self.retry.after_break(attempt, replayable=call.retry)
            if wait is None:
                raise RegistryUnavailable(
                    f"{self.display}: {call.method} {path} failed after {attempt} "
                    f"attempt(s): {type(exc).__name__}",
                    origin=self,
                ) from None
            return _Again(type(exc).__name__, wait)
        except urllib3.exceptions.HTTPError as exc:
            if guard.tripped:
                raise self._cut_off(call, guard) from None
            raise RegistryError(
                f"{self.display}: {call.method} {path}: {type(exc).__name__}", origin=self
            ) from None
        resp, url = answer
        status = resp.status
        if log.isEnabledFor(logging.DEBUG):  # two URL parses per request otherwise
            log.debug("%s %s%s -> %d", call.method, origin_of(url), path_of(url), status)
        if (
            status == 401
            and step
            and (call.retry or call.replayable)
            and step.learn(resp.headers, sent)
        ):
            resp.close()
            return None
        wait = self.retry.after_status(attempt, status, resp.headers, replayable=call.retry)
        if wait is not None:
            resp.close()
            return _Again(status, wait)
        if call.stream and call.read_limit is None:
            return Reply(resp, call.method, url, attempt, guard=guard)
        try:
            if call.read_limit is None:
                body = read_limited(resp, url, SMALL_ANSWER_BYTES, cut=True)
            else:
                body = read_limited(resp, url, call.read_limit)
            return Reply(resp, call.method, url, attempt, body)
        except RegistryUnavailable as exc:
            if guard.tripped:
                raise self._cut_off(call, guard) from None
            wait = self.retry.after_break(attempt, replayable=call.retry)
            if wait is None:
                raise
            return _Again(exc, wait)

    def _exchange(
        self, call: _Call, headers: dict[str, str], guard: Guard
    ) -> tuple[urllib3.BaseHTTPResponse, str]:
        """One try: the request, and the redirects it is allowed to follow; the final
        answer and its URL."""
        url = with_params(call.url, call.params)
        data = call.data if call.replayable else guard.fed(call.data, self.stall)
        first = origin_of(url)
        for hop in range(MAX_HOPS):
            if hop and origin_of(url) != self.url:
                # Checked on every redirect: a registry must not steer Ferry inward.
                check_redirect(url, self.settings)
            else:
                self._check_origin(url)
            if origin_of(url) != first:
                # A redirect to another origin never carries our credentials.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            resp = self.pools.urlopen(
                call.method,
                url,
                body=data,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,  # bodies are read here, with a cap, under the guard
                assert_same_host=False,
            )
            if not (call.follow and resp.status in _REDIRECTS and resp.headers.get("Location")):
                return resp, url
            url = urljoin(url, resp.headers["Location"])
            resp.close()
            log.debug("%s redirected to %s%s", call.method, origin_of(url), path_of(url))
        raise RegistryError(f"{self.display}: too many redirects for {call.method} {path_of(url)}")

    def _check_origin(self, url: str) -> None:
        """Network policy for a host not contacted before (checked once per origin)."""
        origin = origin_of(url)
        with self._origins_lock:
            if origin in self._checked_origins:
                return
        check_url(url, self.settings)
        with self._origins_lock:
            self._checked_origins.add(origin)

    def _token_send(
        self, method: str, url: str, headers: dict[str, str], params: list[tuple[str, str]]
    ) -> Reply:
        return self.request(
            method,
            url,
            headers=headers,
            params=params,
            authenticate=False,
            read_limit=MAX_TOKEN_ANSWER_BYTES,
        )
