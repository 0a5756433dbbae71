"""Listing one registry: the catalog and a repository's tags, one page at a time.

Registries paginate in two ways: a ``Link: <...>; rel="next"`` header, or
``n``/``last`` parameters honoured silently. Both are followed; a link to
another host is not (it would leave the registry's credentials and policy),
a registry that ignores ``last`` is caught by a repeated last item, and one
that caps ``n`` (Distribution 2.8 refuses n > 1000 with a 400) is asked for
less. A catalog listing below a namespace starts just before it and stops
once past it, instead of paging through every repository of the registry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

from common.errors import ListingLimit, RegistryError, RepositoryNotFound
from common.registry import auth as _auth
from common.registry.auth import Scopes
from common.registry.media import check_repository, is_repository, is_tag
from common.registry.transport import Transport
from common.registry.urls import origin_of

log = logging.getLogger("ferry.registry")

# A page of 1,000 names of 255 characters is a quarter of this.
MAX_LISTING_PAGE_BYTES = 2 * 1024 * 1024


def _just_before(prefix: str) -> str:
    """A `last=` value sorting right before ``prefix`` for repository-name characters."""
    return prefix[:-1] + chr(ord(prefix[-1]) - 1) + "~"


class Lister:
    """Repository and tag listings of one registry, through its transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def repositories(self, prefix: str | None = None, page_size: int = 100) -> Iterator[str]:
        """Repository names from the catalog, one page in memory at a time.

        With ``prefix`` (a namespace or deeper path) only repositories below it are
        yielded, and ``prefix`` itself unless it ends with "/"; the listing starts
        just before the prefix and stops once past it.
        """
        p = prefix.strip("/") if prefix else ""
        below_only = bool(prefix and prefix.endswith("/"))
        start = _just_before(p) if p else None
        for page in self._pages("/v2/_catalog", "repositories", _auth.CATALOG, page_size, start):
            for repo in self._valid(page, is_repository, "repository name"):
                if not p or repo.startswith(p + "/") or (repo == p and not below_only):
                    yield repo
                elif repo > p and not repo.startswith(p):
                    return

    def tags(self, repository: str, page_size: int = 100) -> Iterator[str]:
        """Tags of ``repository``, following pagination when the registry offers it."""
        check_repository(repository)
        for page in self._pages(
            f"/v2/{repository}/tags/list",
            "tags",
            _auth.pull(repository),
            page_size,
            repository=repository,
        ):
            yield from self._valid(page, is_tag, f"tag of {repository}")

    def _valid(self, page: list[Any], valid: Callable[[object], bool], what: str) -> list[str]:
        """The names of ``page`` that are valid; the others (a NUL, a newline, too long, not
        a string) could never be stored or addressed, so they are skipped with a warning."""
        good = [name for name in page if valid(name)]
        if len(good) < len(page):
            bad = [repr(name)[:80] for name in page if not valid(name)][:3]
            log.warning(
                "%s: skipping %d invalid %s(s), e.g. %s",
                self.transport.display,
                len(page) - len(good),
                what,
                ", ".join(bad),
            )
        return good

    def _page_items(self, content: bytes, path: str, key: str) -> list[Any]:
        """The list under ``key`` of a listing page (empty when absent); RegistryError when
        the page is not such JSON."""
        try:
            items = json.loads(content).get(key) or []
            if not isinstance(items, list):
                raise ValueError(key)
        except (ValueError, AttributeError, RecursionError):
            raise RegistryError(
                f"{self.transport.display}: {path} answered with malformed JSON"
            ) from None
        return items

    def _pages(
        self,
        path: str,
        key: str,
        scopes: Scopes,
        page_size: int,
        last: str | None = None,
        repository: str | None = None,
    ) -> Iterator[list[str]]:
        transport = self.transport
        n = page_size
        url = transport.url + path
        params: dict[str, Any] | None = {"n": n, **({"last": last} if last else {})}
        prev_last: str | None = None
        # Every page is asked for once: a cursor (link or last item) seen again is a loop.
        seen: set[str] = set()
        while True:
            reply = transport.request(
                "GET", url, params=params, scopes=scopes, read_limit=MAX_LISTING_PAGE_BYTES
            )
            if reply.status_code == 400 and params and params.get("n", 0) > 1:
                # Registries cap n (Distribution 2.8 refuses n > 1000): ask for less.
                reply.close()
                n = params["n"] = params["n"] // 2
                continue
            if reply.status_code != 200:
                what = f"repository {repository}" if repository else "the catalog"
                raise transport.fail(reply, what, repository=repository, missing=RepositoryNotFound)
            items = self._page_items(reply.content, path, key)
            if not items or items[-1] == prev_last:
                return  # empty page, or a registry that ignores `last`
            yield items
            prev_last = items[-1]
            link = reply.links.get("next", {}).get("url")
            if link:
                url, params = urljoin(reply.url, link), None
                if origin_of(url) != transport.url:
                    log.warning(
                        "%s: not following a listing link to another host", transport.display
                    )
                    return
                cursor = url
            elif params is not None and len(items) >= n:
                params = {"n": n, "last": items[-1]}
                cursor = f"last={items[-1]}"
            else:
                return
            if cursor in seen:
                what = f"tags of {repository}" if repository else "the catalog"
                raise ListingLimit(
                    f"{transport.display}: the listing of {what} loops (its next page "
                    "was already read); stopped rather than list for ever"
                )
            seen.add(cursor)
