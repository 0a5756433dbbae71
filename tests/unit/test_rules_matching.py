"""The rule model's pure parts: filters (regex and glob), the matcher, target names, schedules."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from common.domain.rules import (
    Selector,
    check_namespace,
    check_resource_types,
    check_rule_name,
    check_schedule,
    compile_pattern,
    map_repository,
    next_run,
)
from common.errors import ValidationError

# (source repository, source namespace, target namespace) -> target repository
MAPPING = [
    ("project/app", "project", "team", "team/app"),
    ("project/sub1/sub2", "project", "team", "team/sub1/sub2"),
    ("project/sub1/sub2", "project", "", "project/sub1/sub2"),
    ("project/a/b/c/d", "project", "x", "x/a/b/c/d"),
    ("project/project/app", "project", "team", "team/project/app"),
    ("library/nginx", "library", "mirror", "mirror/nginx"),
]


@pytest.mark.parametrize(("source", "namespace", "target_ns", "expected"), MAPPING)
def test_map_repository(source, namespace, target_ns, expected):
    assert map_repository(source, namespace, target_ns) == expected


@pytest.mark.parametrize(
    ("source", "namespace"),
    [
        ("other/app", "project"),
        ("projectx/app", "project"),  # a prefix of the name is not the namespace
        ("project", "project"),  # nothing below the namespace
        ("project/", "project"),
    ],
)
def test_map_repository_refuses_names_outside_the_namespace(source, namespace):
    with pytest.raises(ValueError):
        map_repository(source, namespace, "team")


# (syntax, pattern, value, matches) — filters are full-match.
MATCHES = [
    ("regex", "", "anything/at/all", True),
    ("regex", "app", "app", True),
    ("regex", "app", "app2", False),  # full match, not search
    ("regex", "app", "my-app", False),
    ("regex", "sub1/.*", "sub1/sub2", True),
    ("regex", "sub1/.*", "sub2/sub1", False),
    ("regex", "v[0-9]+\\..*", "v1.2.3", True),
    ("regex", "v[0-9]+\\..*", "latest", False),
    ("regex", "a|b", "b", True),  # alternation is anchored as a whole
    ("regex", "a|b", "ab", False),
    ("regex", "(?i)LATEST", "latest", True),  # inline flags keep working
    ("glob", "*", "app", True),
    ("glob", "*", "sub1/sub2", False),  # * stays within one level
    ("glob", "**", "sub1/sub2/sub3", True),
    ("glob", "sub1/*", "sub1/app", True),
    ("glob", "sub1/*", "sub1/a/b", False),
    ("glob", "sub1/**", "sub1/a/b", True),
    ("glob", "**/app", "app", True),  # **/ also matches no level
    ("glob", "**/app", "a/b/app", True),
    ("glob", "a/**/b", "a/b", True),
    ("glob", "a/**/b", "a/x/y/b", True),
    ("glob", "v?.*", "v1.0", True),
    ("glob", "v?.*", "v10.0", False),
    ("glob", "{prod,stage}-*", "stage-api", True),
    ("glob", "{prod,stage}-*", "dev-api", False),
    ("glob", "{a,{b,c}}x", "cx", True),  # nested alternatives
    ("glob", "{,rc-}1", "1", True),  # empty alternative
    ("glob", "[abc]*", "bob", True),
    ("glob", "[!abc]*", "bob", False),
    ("glob", "[a-c]?", "c1", True),
    ("glob", "a.b", "axb", False),  # regex metacharacters are literal
    ("glob", "a+b", "a+b", True),
    ("glob", "\\*", "*", True),
    ("glob", "\\*", "x", False),
    ("glob", "v1,2", "v1,2", True),  # a comma outside braces is literal
]


@pytest.mark.parametrize(("syntax", "pattern", "value", "expected"), MATCHES)
def test_filters_full_match(syntax, pattern, value, expected):
    compiled = compile_pattern(pattern, syntax, "source.tag_filter")
    matched = compiled is None or compiled.fullmatch(value) is not None
    assert matched is expected


# (syntax, pattern, message fragment, position)
INVALID = [
    ("regex", "(abc", "missing ), unterminated subpattern", 0),
    ("regex", "ab[c", "unterminated character set", 2),
    ("regex", "a**", "multiple repeat", 2),
    ("regex", "x{2,1}", "min repeat greater than max repeat", 2),
    ("regex", "abc)", "unbalanced parenthesis", 3),
    ("regex", "a\\", "bad escape (end of pattern)", 1),
    ("glob", "{a,b", "unclosed '{'", 0),
    ("glob", "x/{a,{b}", "unclosed '{'", 2),
    ("glob", "a}b", "unmatched '}'", 1),
    ("glob", "ab[cd", "unclosed '['", 2),
    ("glob", "v[z-a]", "bad character class", 1),
    ("glob", "abc\\", "trailing backslash", 3),
]


@pytest.mark.parametrize(("syntax", "pattern", "fragment", "position"), INVALID)
def test_invalid_patterns_name_the_field_and_the_position(syntax, pattern, fragment, position):
    with pytest.raises(ValidationError) as info:
        compile_pattern(pattern, syntax, "source.repository_filter")
    (message,) = info.value.errors["source.repository_filter"]
    assert fragment in message
    assert message.endswith(f"at position {position}")


def test_overlong_pattern_and_unknown_syntax_are_refused():
    with pytest.raises(ValidationError) as info:
        compile_pattern("a" * 1025, "regex", "source.tag_filter")
    assert "longer than 1024" in info.value.errors["source.tag_filter"][0]
    with pytest.raises(ValidationError):
        compile_pattern("a", "sql", "source.tag_filter")


def _rule(**overrides):
    row = {
        "source_namespace": "project",
        "repository_filter": "",
        "tag_filter": "",
        "repository_exclude": "",
        "tag_exclude": "",
        "filter_syntax": "regex",
        "resource_types": ["image", "chart"],
    }
    row.update(overrides)
    return SimpleNamespace(**row)


# (rule overrides, repository, tag, selected)
SELECTION = [
    ({}, "project/app", "latest", True),
    ({}, "project/sub1/sub2", "v1", True),
    ({}, "other/app", "latest", False),
    ({}, "projectx/app", "latest", False),
    ({}, "project", "latest", False),
    ({"repository_filter": "sub1/.*"}, "project/sub1/sub2", "v1", True),
    ({"repository_filter": "sub1/.*"}, "project/sub1", "v1", False),
    ({"repository_filter": "sub1"}, "project/sub1/sub2", "v1", False),
    ({"tag_filter": "v.*"}, "project/app", "v2", True),
    ({"tag_filter": "v.*"}, "project/app", "latest", False),
    ({"tag_exclude": ".*-rc"}, "project/app", "v2-rc", False),
    ({"tag_exclude": ".*-rc"}, "project/app", "v2", True),
    ({"repository_exclude": "tmp/.*"}, "project/tmp/x", "v2", False),
    ({"repository_exclude": "tmp/.*"}, "project/keep/x", "v2", True),
    (
        {"filter_syntax": "glob", "repository_filter": "**", "tag_filter": "v*"},
        "project/a/b/c",
        "v9",
        True,
    ),
    (
        {"filter_syntax": "glob", "repository_filter": "*", "tag_filter": "v*"},
        "project/a/b",
        "v9",
        False,
    ),
    (
        {"filter_syntax": "glob", "repository_filter": "{api,web}", "tag_exclude": "*-debug"},
        "project/web",
        "1.0-debug",
        False,
    ),
]


@pytest.mark.parametrize(("overrides", "repository", "tag", "selected"), SELECTION)
def test_selector_selects_repository_and_tag(overrides, repository, tag, selected):
    sel = Selector.from_rule(_rule(**overrides))
    assert (sel.selects_repository(repository) and sel.selects_tag(tag)) is selected
    assert sel.selects(repository, tag) is selected


@pytest.mark.parametrize(
    ("types", "kind", "selected"),
    [
        (["image"], "image", True),
        (["image"], "index", True),
        (["image"], "chart", False),
        (["chart"], "chart", True),
        (["chart"], "image", False),
        (["chart"], "index", False),
        (["image", "chart"], "chart", True),
        (["image", "chart"], "artifact", False),
    ],
)
def test_selector_kinds(types, kind, selected):
    sel = Selector.from_rule(_rule(resource_types=types))
    assert sel.selects_kind(kind) is selected
    assert sel.selects("project/app", "v1", kind) is selected


def test_selector_refuses_an_invalid_stored_pattern():
    with pytest.raises(ValidationError):
        Selector.from_rule(_rule(tag_filter="("))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("sync-prod", True),
        ("a", True),
        ("9.x_y-z", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("-lead", False),
        (".lead", False),
        ("Upper", False),
        ("sp ace", False),
        ("slash/no", False),
        ("ünï", False),
    ],
)
def test_rule_names(name, ok):
    if ok:
        assert check_rule_name(name) == name
    else:
        with pytest.raises(ValidationError):
            check_rule_name(name)


@pytest.mark.parametrize(
    ("namespace", "ok"),
    [
        ("project", True),
        ("my-team", True),
        ("a.b", True),
        ("a__b", True),
        ("x1", True),
        ("", False),
        ("a/b", False),
        ("Project", False),
        ("-a", False),
        ("a-", False),
        ("a..b", False),
        ("a" * 256, False),
    ],
)
def test_namespaces(namespace, ok):
    if ok:
        assert check_namespace(namespace, "source.namespace") == namespace
    else:
        with pytest.raises(ValidationError) as info:
            check_namespace(namespace, "source.namespace")
        assert "source.namespace" in info.value.errors


def test_empty_target_namespace_is_allowed_where_asked():
    assert check_namespace("", "target.namespace", allow_empty=True) == ""


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["image"], ["image"]),
        (["chart", "image"], ["chart", "image"]),
        (["image", "image"], ["image"]),
    ],
)
def test_resource_types(types, expected):
    assert check_resource_types(types) == expected


@pytest.mark.parametrize("types", [[], ["helm"], ["image", "artifact"]])
def test_resource_types_refused(types):
    with pytest.raises(ValidationError):
        check_resource_types(types)


@pytest.mark.parametrize(
    ("expression", "normalised"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("0  3 * *   1-5", "0 3 * * 1-5"),
        ("0 0 * * mon", "0 0 * * mon"),
    ],
)
def test_schedules_accepted(expression, normalised):
    assert check_schedule(expression) == normalised


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("@daily", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("* * * *", "5 fields"),
        ("61 * * * *", "invalid cron"),
        ("* * * 13 *", "invalid cron"),
        ("0 0 31 2 *", "never fires"),
        ("", "5 fields"),
    ],
)
def test_schedules_refused(expression, fragment):
    with pytest.raises(ValidationError) as info:
        check_schedule(expression)
    assert fragment in info.value.errors["schedule"][0]


def test_next_run_is_after_the_given_time_in_utc():
    after = dt.datetime(2024, 1, 1, 0, 2, tzinfo=dt.UTC)
    assert next_run("*/5 * * * *", after) == dt.datetime(2024, 1, 1, 0, 5, tzinfo=dt.UTC)
