"""The few things the registry client needs to know about a URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, host lowercased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def path_of(url: str) -> str:
    """A URL without its query: upload state and signed URLs stay out of logs."""
    return urlsplit(url).path


def with_params(url: str, params: Any) -> str:
    """``url`` with ``params`` (a mapping or pairs) added to its query."""
    if not params:
        return url
    query = urlencode(params, doseq=True)
    return f"{url}{'&' if urlsplit(url).query else '?'}{query}"
