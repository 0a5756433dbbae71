"""User patterns run in linear time (RE2): ReDoS filters answer at once, refusals are 422s
(issue 16, #3)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.support.api import assert_error, rule_body
from tests.support.hostile import HostileRegistry

OCI = "application/vnd.oci.image.manifest.v1+json"
EVIL_TAG = "a" * 40  # against (a+)+b: about a day in a backtracking engine


def test_a_redos_pattern_against_a_long_tag_returns_at_once_in_a_fresh_process():
    # A fresh interpreter, so a runaway match (which holds the GIL) cannot hang the suite.
    code = (
        "from common.domain.rules import compile_pattern as c\n"
        "cases = (('regex', '(a+)+b'), ('regex', '(a|aa)+$x'), ('glob', '*' * 30 + 'b'))\n"
        "for syntax, p in cases:\n"
        f"    assert c(p, syntax, 'f').fullmatch({EVIL_TAG!r}) is None\n"
        "print('ok')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


@pytest.fixture
def evil_source():
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI, "layers": []}).encode()
    with HostileRegistry(repositories={"project/app": {EVIL_TAG: (manifest, OCI)}}) as server:
        yield server


def test_preview_of_a_redos_filter_over_a_long_tag_answers_quickly(alice, registry, evil_source):
    src = alice.create_instance(evil_source, "evil")["id"]
    dst = alice.create_instance(registry, "dst")["id"]
    rule = alice.post(
        "/rules", rule_body(src, dst, "redos", source={"tag_filter": "(a+)+b"}), expect=201
    )["id"]
    started = time.monotonic()
    assert alice.get(f"/rules/{rule}/preview") == []
    took = time.monotonic() - started
    assert took < 15, f"preview took {took:.1f}s"  # generous: a loaded CI machine


@pytest.mark.parametrize(
    ("field", "pattern", "fragment"),
    [
        ("tag_filter", r"(a)\1", "invalid escape sequence"),
        ("repository_filter", "app(?=x)", "invalid perl operator"),
        ("tag_exclude", "v{1001}", "invalid repetition size"),
    ],
)
def test_constructs_re2_refuses_are_a_422_naming_the_field(world, field, pattern, fragment):
    body = world.rule(source={field: pattern})
    error = assert_error(world.post(body), 422, f"source.{field}")
    (message,) = error["errors"][f"source.{field}"]
    assert "RE2" in message and fragment in message, message
