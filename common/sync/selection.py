"""A rule's view of one source repository: filters, version constraint, ``latest`` N.

The tag filters and the version constraint are per tag (``Selector.selects_tag``);
``latest`` needs the repository's whole selected list, and for tags that are not all
semantic versions, each image's ``created`` time from its config.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from common.domain.models import Rule
from common.domain.referrers import is_referrer_tag
from common.domain.rules import Selector
from common.domain.semver import newest, parse_created
from common.errors import FerryError
from common.registry import RegistryClient
from common.registry.media import Manifest

log = logging.getLogger(__name__)

# An image config is a few KiB; a larger "config" is not one whose time we read.
MAX_CONFIG_BYTES = 1 << 20
AGE_THREADS = 8


def candidate_tags(rule: Rule, selector: Selector, tags: Iterable[str]) -> list[str]:
    """The tags the filters and the version constraint select, before ``latest``.

    Referrer-schema tags travel with their subject when ``include_referrers`` is on.
    """
    return [
        t
        for t in tags
        if selector.selects_tag(t) and not (rule.include_referrers and is_referrer_tag(t))
    ]


def view(
    source: RegistryClient, repository: str, rule: Rule, selector: Selector, tags: Iterable[str]
) -> list[str]:
    """The tags of ``repository`` the rule selects now (``latest`` applied), newest first
    when ``latest`` is set, in listing order otherwise."""
    chosen = candidate_tags(rule, selector, tags)
    if selector.latest is None:
        return chosen
    return newest(chosen, selector.latest, lambda ts: created_times(source, repository, ts))


def created_times(
    source: RegistryClient, repository: str, tags: list[str]
) -> dict[str, dt.datetime | None]:
    """Each tag's image ``created`` time (an index: its first child's), None when unknown."""
    with ThreadPoolExecutor(AGE_THREADS, thread_name_prefix="ferry-age") as pool:
        return dict(
            zip(tags, pool.map(lambda t: created_of(source, repository, t), tags), strict=True)
        )


def created_of(source: RegistryClient, repository: str, reference: str) -> dt.datetime | None:
    """The ``created`` time in the config of what ``reference`` points to, or None."""
    try:
        manifest = source.get_manifest(repository, reference)
        if manifest.is_index:
            children = manifest.children()
            if not children:
                return None
            manifest = source.get_manifest(repository, children[0].digest)
        return _config_created(source, repository, manifest)
    except (FerryError, ValueError, TypeError, AttributeError) as exc:
        log.info("created time of %s:%s unknown: %s", repository, reference, exc)
        return None


def _config_created(
    source: RegistryClient, repository: str, manifest: Manifest
) -> dt.datetime | None:
    config = manifest.json.get("config")
    if not isinstance(config, dict):
        return None
    size, digest = config.get("size"), config.get("digest")
    if not isinstance(size, int) or not isinstance(digest, str) or size > MAX_CONFIG_BYTES:
        return None
    out = io.BytesIO()
    source.download_blob(repository, digest, out)
    doc = json.loads(out.getvalue())
    return parse_created(doc.get("created")) if isinstance(doc, dict) else None
