"""Why a rule selects nothing: the first filter that excluded everything, with an example.

Filters match the whole name (``fullmatch``), so ``^v`` selects no tag ``v1.0``;
a person who wrote it learns which filter did it and on which name. Listing is
capped: past the caps the answer is about what was listed. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import islice

from common.domain.models import Rule
from common.domain.rules import Pattern, Selector
from common.domain.vocab import FilterSyntax
from common.registry import RegistryClient
from common.sync.planner import kind_of

MAX_REPOSITORIES = 1000
MAX_TAGS = 5000
MAX_KIND_READS = 50
WHOLE_NAME = "filters match the whole name (like re.fullmatch)"


@dataclass(frozen=True)
class Explanation:
    """The filter (a field path of the rule) that left nothing, how many names it excluded,
    one of them, and a sentence saying so."""

    filter: str
    pattern: str | None
    excluded: int
    example: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _hint(pattern: Pattern, syntax: str, names: list[str]) -> tuple[str, str]:
    """An example name, and a hint when the regex matches only part of it."""
    if syntax == FilterSyntax.REGEX:
        for name in names:
            if pattern.search(name) is not None:  # type: ignore[attr-defined]
                return name, (
                    f"; it matches only part of {name!r}, but {WHOLE_NAME}: "
                    f"write e.g. {pattern.pattern.lstrip('^').rstrip('$') + '.*'!r}"
                )
    return names[0], f"; {WHOLE_NAME}"


def _stage(
    names: list[str],
    field: str,
    pattern: Pattern | None,
    keep_when_matched: bool,
    syntax: str,
    what: str,
) -> tuple[list[str], Explanation | None]:
    """The names a filter keeps, or an explanation when it keeps none of them."""
    if pattern is None:
        return names, None
    kept = [n for n in names if (pattern.fullmatch(n) is not None) == keep_when_matched]
    if kept:
        return kept, None
    if keep_when_matched:
        example, hint = _hint(pattern, syntax, names)
    else:
        example, hint = names[0], ""
    verb = "matched none of" if keep_when_matched else "excluded all"
    message = (
        f"{field} {pattern.pattern!r} {verb} the {len(names)} {what} listed, e.g. {example!r}{hint}"
    )
    return kept, Explanation(field, pattern.pattern, len(names), example, message)


def _tags(source: RegistryClient, repositories: Iterable[str]) -> dict[str, list[str]]:
    """Tags per repository, at most MAX_TAGS in all."""
    found: dict[str, list[str]] = {}
    budget = MAX_TAGS
    for repository in repositories:
        tags = list(islice(source.iter_tags(repository), budget))
        budget -= len(tags)
        found[repository] = tags
        if budget <= 0:
            break
    return found


def explain(source: RegistryClient, rule: Rule) -> Explanation | None:
    """Which filter of ``rule`` left nothing on ``source``; None if something is selected."""
    selector = Selector.from_rule(rule)
    syntax = rule.filter_syntax or FilterSyntax.REGEX
    prefix = rule.source_namespace + "/"
    listed = [
        r[len(prefix) :]
        for r in islice(source.iter_repositories(prefix=prefix), MAX_REPOSITORIES)
        if r.startswith(prefix) and len(r) > len(prefix)
    ]
    if not listed:
        message = f"the source has no repository below {prefix}"
        return Explanation("source.namespace", rule.source_namespace, 0, None, message)
    repos, why = _stage(
        listed, "source.repository_filter", selector.repository_filter, True, syntax, "repositories"
    )
    if why is None:
        repos, why = _stage(
            repos,
            "source.repository_exclude",
            selector.repository_exclude,
            False,
            syntax,
            "repositories",
        )
    if why is not None:
        return why
    tags = _tags(source, (prefix + r for r in repos))
    names = sorted({t for ts in tags.values() for t in ts})
    if not names:
        message = f"the {len(repos)} selected repositories have no tags, e.g. {prefix + repos[0]!r}"
        return Explanation("source.namespace", rule.source_namespace, 0, prefix + repos[0], message)
    kept, why = _stage(names, "source.tag_filter", selector.tag_filter, True, syntax, "tags")
    if why is None:
        kept, why = _stage(kept, "source.tag_exclude", selector.tag_exclude, False, syntax, "tags")
    if why is not None:
        return why
    return _kinds(source, rule, selector, tags, set(kept))


def _kinds(
    source: RegistryClient,
    rule: Rule,
    selector: Selector,
    tags: dict[str, list[str]],
    kept: set[str],
) -> Explanation | None:
    """The resource-type filter, read on up to MAX_KIND_READS selected tags."""
    pairs = [(r, t) for r, ts in tags.items() for t in ts if t in kept][:MAX_KIND_READS]
    seen: list[tuple[str, str]] = []
    for repository, tag in pairs:
        found = kind_of(source, repository, tag)
        if found is None:
            continue
        if selector.selects_kind(found[1]):
            return None
        seen.append((f"{repository}:{tag}", str(found[1])))
    if not seen:
        return None
    example, kind = seen[0]
    types = ",".join(rule.resource_types or ())
    message = (
        f"resource_types {types!r} excluded all {len(seen)} artifacts read, e.g. "
        f"{example!r} (a {kind})"
    )
    return Explanation("resource_types", types, len(seen), example, message)
