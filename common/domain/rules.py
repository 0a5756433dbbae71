"""The rule model's pure parts: filter compilation, the matcher, target names, schedules.

Nothing here touches the database, the network or a framework, so the sync
pipeline and the API share exactly one definition of what a rule selects.

Filters are full-match: a repository filter is matched against the whole path
below the namespace (``sub1/sub2`` for ``project/sub1/sub2``), a tag filter
against the whole tag; an empty filter selects everything. Two syntaxes:

- ``regex``: regular expressions in the common subset of Python's and RE2's
  syntax, matched by RE2 (``google-re2``) in linear time, so no pattern and no
  tag from a registry or a webhook can make matching run away (ReDoS).
  Constructs RE2 refuses (backreferences, lookarounds) are a 422.
- ``glob``: ``*`` any run of characters within one level, ``**`` across levels
  (``**/`` also matches no level at all), ``?`` one character, ``[abc]`` /
  ``[!abc]`` a class, ``{a,b}`` alternatives (nestable), ``\\`` escapes the
  next character — so TCR-style regexes and Harbor-style doublestar globs
  both work.

Error positions are 0-based offsets into the pattern, as Python's ``re`` counts.
Globs are translated to RE2 regexes too, with every literal written as a
``\\x{..}`` escape, so a glob never reaches a backtracking engine either.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2
import semantic_version
from croniter import CroniterBadDateError, croniter

from common.domain import semver as versions
from common.domain.models import Rule
from common.domain.vocab import KINDS_FOR_TYPE, ArtifactKind, FilterSyntax, ResourceType
from common.errors import ValidationError

SYNTAXES = tuple(FilterSyntax)
RESOURCE_TYPES = tuple(ResourceType)
MAX_PATTERN_LENGTH = 1024
MAX_NAMESPACE_LENGTH = 255

RULE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# One path component of an OCI repository name (distribution's reference grammar).
NAMESPACE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


class Pattern(Protocol):
    """A compiled filter: RE2, linear time in the length of the input."""

    pattern: str

    def fullmatch(self, text: str) -> object | None: ...


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # refusals are answered as 422s, not logged to stderr
    return options


_RE2_OPTIONS = _re2_options()


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", {field: [message]})


def compile_pattern(pattern: str, syntax: str, field: str) -> Pattern | None:
    """The compiled filter (use ``fullmatch``, linear time), or None for an empty pattern.

    Raises ValidationError with ``errors={field: ["... at position N"]}`` when
    the pattern is invalid in its syntax or uses what RE2 cannot match.
    """
    if syntax not in SYNTAXES:
        raise _fail(field, f"unknown filter syntax {syntax!r}; expected regex or glob")
    if pattern == "":
        return None
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise _fail(
            field,
            f"pattern is longer than {MAX_PATTERN_LENGTH} characters "
            f"at position {MAX_PATTERN_LENGTH}",
        )
    if syntax == FilterSyntax.GLOB:
        return _re2(glob_to_regex(pattern, field), pattern, field)
    try:
        # Python's parser only to name a syntax error and its position; never to match.
        re.compile(pattern)
    except re.error as exc:
        pos = exc.pos if exc.pos is not None else 0
        raise _fail(field, f"invalid regular expression: {exc.msg} at position {pos}") from None
    except (OverflowError, RecursionError):
        raise _fail(field, "invalid regular expression: too complex at position 0") from None
    return _re2(pattern, pattern, field)


def _re2(source: str, pattern: str, field: str) -> Pattern:
    """``source`` compiled by RE2; a ValidationError naming the construct RE2 refused."""
    try:
        return re2.compile(source, options=_RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        why = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        fragment = why.split(": ", 1)[1] if ": " in why else ""
        pos = max(pattern.find(fragment), 0) if fragment else 0
        raise _fail(
            field,
            f"not supported by the linear-time matcher (RE2): {why} at position {pos}",
        ) from None


def glob_to_regex(pattern: str, field: str = "pattern") -> str:
    """The regular expression (full-match) equivalent to a glob; ValidationError if malformed."""
    out: list[str] = []
    braces: list[int] = []  # positions of the open '{' not yet closed
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise _fail(field, f"invalid glob: trailing backslash at position {i}")
            out.append(_literal(pattern[i + 1]))
            i += 2
        elif c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            if j - i == 1:
                out.append("[^/]*")
            elif j < n and pattern[j] == "/" and (i == 0 or pattern[i - 1] == "/"):
                out.append("(?:.*/)?")  # "a/**/b" matches "a/b" too
                j += 1
            else:
                out.append(".*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            i = _glob_class(pattern, i, field, out)
        elif c == "{":
            braces.append(i)
            out.append("(?:")
            i += 1
        elif c == "," and braces:
            out.append("|")
            i += 1
        elif c == "}":
            if not braces:
                raise _fail(field, f"invalid glob: unmatched '}}' at position {i}")
            braces.pop()
            out.append(")")
            i += 1
        else:
            out.append(_literal(c))
            i += 1
    if braces:
        raise _fail(field, f"invalid glob: unclosed '{{' at position {braces[-1]}")
    return "".join(out)


def _literal(c: str) -> str:
    """``c`` as an RE2 literal: letters and digits as they are, anything else escaped."""
    return c if c.isascii() and (c.isalnum() or c == "_") else f"\\x{{{ord(c):X}}}"


def _glob_class(pattern: str, start: int, field: str, out: list[str]) -> int:
    """Translate the ``[...]`` class at ``start`` (never matching "/"); the index after it."""
    j = start + 1
    negate = j < len(pattern) and pattern[j] in "!^"
    if negate:
        j += 1
    body_start = j
    if j < len(pattern) and pattern[j] == "]":  # a leading ']' is literal
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        raise _fail(field, f"invalid glob: unclosed '[' at position {start}")
    ranges = _class_ranges(pattern[body_start:j])
    if any(lo > hi for lo, hi in ranges):
        raise _fail(field, f"invalid glob: bad character class (bad range) at position {start}")
    if negate:
        ranges.append(("/", "/"))
    else:  # a glob class never matches the level separator: cut "/" out of every range
        ranges = [
            part
            for lo, hi in ranges
            for part in ((lo, min(hi, ".")), (max(lo, "0"), hi))
            if part[0] <= part[1]
        ]
        if not ranges:
            out.append("[^\\x{0}-\\x{10FFFF}]")  # matches nothing, as the glob does
            return j + 1
    body = "".join(
        _literal(lo) if lo == hi else f"{_literal(lo)}-{_literal(hi)}" for lo, hi in ranges
    )
    out.append(f"[{'^' if negate else ''}{body}]")
    return j + 1


def _class_ranges(body: str) -> list[tuple[str, str]]:
    """The (low, high) character ranges of a glob class body (``a-z``, single characters)."""
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            ranges.append((body[i], body[i + 2]))
            i += 3
        else:
            ranges.append((body[i], body[i]))
            i += 1
    return ranges


def check_namespace(value: str, field: str, *, allow_empty: bool = False) -> str:
    """``value`` if it is one valid repository path component; ValidationError otherwise."""
    if value == "" and allow_empty:
        return value
    if value == "":
        raise _fail(field, "must not be empty: a rule always names one namespace")
    if "/" in value:
        raise _fail(field, "must be one path level (no '/'); deeper levels are kept by mapping")
    if len(value) > MAX_NAMESPACE_LENGTH or not NAMESPACE.fullmatch(value):
        raise _fail(
            field,
            "must be lowercase letters and digits, separated by '.', '_', "
            "'__' or '-' (an OCI repository name component)",
        )
    return value


def check_rule_name(value: str, field: str = "name") -> str:
    """``value`` if it is a valid rule name; ValidationError otherwise."""
    if not RULE_NAME.fullmatch(value):
        raise _fail(
            field,
            "must be 1 to 64 characters: lowercase letters, digits and '-._', "
            "starting with a letter or digit",
        )
    return value


def check_resource_types(values: Iterable[str], field: str = "resource_types") -> list[str]:
    """The de-duplicated, non-empty list of resource types; ValidationError otherwise."""
    out: list[str] = []
    for value in values:
        if value not in RESOURCE_TYPES:
            raise _fail(field, f"unknown resource type {value!r}; expected image or chart")
        if value not in out:
            out.append(value)
    if not out:
        raise _fail(field, "must name at least one of image, chart")
    return out


def check_schedule(expression: str, field: str = "schedule") -> str:
    """The normalised 5-field cron expression if valid and ever due; ValidationError otherwise."""
    fields = expression.split()
    if len(fields) != 5:
        raise _fail(
            field,
            "must be a cron expression of 5 fields: minute hour day-of-month "
            f"month day-of-week (got {len(fields)})",
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise _fail(field, f"invalid cron expression {normalised!r}")
    try:
        next_run(normalised, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    except (CroniterBadDateError, ValueError, KeyError, OverflowError):
        raise _fail(field, f"cron expression {normalised!r} never fires") from None
    return normalised


def next_run(expression: str, after: dt.datetime, timezone: str = "UTC") -> dt.datetime:
    """The first time strictly after ``after`` at which ``expression`` fires in ``timezone``,
    as an aware UTC datetime."""
    local = after.astimezone(ZoneInfo(timezone or "UTC"))
    return croniter(expression, local).get_next(dt.datetime).astimezone(dt.UTC)


def check_timezone(name: str, field: str = "schedule_timezone") -> str:
    """``name`` if it is an IANA time zone (``UTC``, ``Europe/Paris``); else ValidationError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(
            field,
            f"unknown time zone {name[:64]!r} (use an IANA name such as 'UTC' or 'Europe/Paris')",
        ) from None
    return name


def map_repository(source_repository: str, source_namespace: str, target_namespace: str) -> str:
    """The target repository name: the namespace replaced, every deeper level kept.

    ``project/sub1/sub2`` with target namespace ``team`` is ``team/sub1/sub2``;
    an empty target namespace keeps the source name. Raises ValueError when
    ``source_repository`` is not below ``source_namespace``.
    """
    prefix = source_namespace + "/"
    if not source_repository.startswith(prefix) or len(source_repository) == len(prefix):
        raise ValueError(f"{source_repository!r} is not below namespace {source_namespace!r}")
    if not target_namespace:
        return source_repository
    return target_namespace + "/" + source_repository[len(prefix) :]


def _selected(value: str, include: Pattern | None, exclude: Pattern | None) -> bool:
    if include is not None and include.fullmatch(value) is None:
        return False
    return exclude is None or exclude.fullmatch(value) is None


@dataclass(frozen=True)
class Selector:
    """What one rule selects: repositories below its namespace, tags, and artifact kinds."""

    namespace: str
    repository_filter: Pattern | None = None
    tag_filter: Pattern | None = None
    repository_exclude: Pattern | None = None
    tag_exclude: Pattern | None = None
    kinds: frozenset[str] = frozenset({ArtifactKind.IMAGE, ArtifactKind.INDEX, ArtifactKind.CHART})
    semver: semantic_version.NpmSpec | None = None
    latest: int | None = None

    @classmethod
    def from_rule(cls, rule: Rule) -> Selector:
        """The selector of a stored rule; ValidationError if its filters are invalid."""
        syntax = rule.filter_syntax or FilterSyntax.REGEX

        def pattern(column: str, field: str) -> Pattern | None:
            return compile_pattern(getattr(rule, column) or "", syntax, field)

        types = check_resource_types(rule.resource_types or ())
        return cls(
            namespace=rule.source_namespace,
            repository_filter=pattern("repository_filter", "source.repository_filter"),
            tag_filter=pattern("tag_filter", "source.tag_filter"),
            repository_exclude=pattern("repository_exclude", "source.repository_exclude"),
            tag_exclude=pattern("tag_exclude", "source.tag_exclude"),
            kinds=frozenset().union(*(KINDS_FOR_TYPE[t] for t in types)),
            # getattr: rule-shaped objects from before issue 14 have neither field.
            semver=versions.compile_constraint(getattr(rule, "semver", ""), "source.semver"),
            latest=versions.check_latest(getattr(rule, "latest", None), "source.latest"),
        )

    def selects_repository(self, repository: str) -> bool:
        """True when ``repository`` (``ns/rest``) is below the namespace and passes the filters."""
        prefix = self.namespace + "/"
        if not repository.startswith(prefix) or len(repository) == len(prefix):
            return False
        rest = repository[len(prefix) :]
        return _selected(rest, self.repository_filter, self.repository_exclude)

    def selects_tag(self, tag: str) -> bool:
        """True when ``tag`` passes the tag filter, is not excluded, and satisfies the
        version constraint (``latest`` is a per-repository view: see ``semver.newest``)."""
        return _selected(tag, self.tag_filter, self.tag_exclude) and versions.matches(
            self.semver, tag
        )

    def selects_kind(self, kind: str) -> bool:
        """True when an artifact of ``kind`` (image, index, chart, artifact) is selected."""
        return kind in self.kinds

    def selects(self, repository: str, tag: str, kind: str | None = None) -> bool:
        """True when ``repository:tag`` (and its kind, when known) is selected."""
        return (
            self.selects_repository(repository)
            and self.selects_tag(tag)
            and (kind is None or self.selects_kind(kind))
        )
