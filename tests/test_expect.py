"""Expectation checks as a table: response in, reason (or pass) out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthprobe.expect import Response, judge, status_matches
from synthprobe.models import Expectation, JsonCheck

FEED = json.dumps(
    {"status": "ok", "items": [{"id": "a", "n": 1}, {"id": "b", "n": True}], "meta": {"count": 2}}
).encode()
JSON_HEADERS = (("content-type", "application/json; charset=utf-8"),)


def obs(status: int = 200, body: bytes = FEED, truncated: bool = False) -> Response:
    return Response(status=status, headers=JSON_HEADERS, body=body, truncated=truncated)


CASES = [
    ("2xx-pass", Expectation(), obs(204), 0.1, None),
    ("2xx-fail", Expectation(), obs(301), 0.1, "server.status"),
    ("int-list", Expectation(status=(200, 201)), obs(201), 0.1, None),
    ("int-list-fail", Expectation(status=(200, 201)), obs(202), 0.1, "server.status"),
    ("class-5xx", Expectation(status=("5xx",)), obs(503), 0.1, None),
    ("latency-pass", Expectation(max_latency=0.5), obs(), 0.4, None),
    ("latency-fail", Expectation(max_latency=0.5), obs(), 0.6, "server.slow"),
    ("status-before-slow", Expectation(max_latency=0.5), obs(500), 0.6, "server.status"),
    (
        "assertion-before-slow",
        Expectation(max_latency=0.5, body_contains="zzz"),
        obs(),
        0.6,
        "server.assertion",
    ),
    ("contains", Expectation(body_contains='"items"'), obs(), 0.1, None),
    ("contains-fail", Expectation(body_contains="nope"), obs(), 0.1, "server.assertion"),
    ("regex", Expectation(body_regex=r'"id": "b"'), obs(), 0.1, None),
    ("regex-fail", Expectation(body_regex=r"^<html"), obs(), 0.1, "server.assertion"),
    ("header", Expectation(headers=(("Content-Type", "application/json.*"),)), obs(), 0.1, None),
    (
        "header-fail",
        Expectation(headers=(("content-type", "^text/"),)),
        obs(),
        0.1,
        "server.assertion",
    ),
    ("header-missing", Expectation(headers=(("etag", "."),)), obs(), 0.1, "server.assertion"),
    ("json-min", Expectation(json=(JsonCheck("items", min_items=2),)), obs(), 0.1, None),
    (
        "json-min-fail",
        Expectation(json=(JsonCheck("items", min_items=3),)),
        obs(),
        0.1,
        "server.assertion",
    ),
    (
        "json-max-fail",
        Expectation(json=(JsonCheck("items", max_items=1),)),
        obs(),
        0.1,
        "server.assertion",
    ),
    ("json-exists", Expectation(json=(JsonCheck("items[1].id", exists=True),)), obs(), 0.1, None),
    (
        "json-exists-fail",
        Expectation(json=(JsonCheck("items[2].id", exists=True),)),
        obs(),
        0.1,
        "server.assertion",
    ),
    ("json-absent", Expectation(json=(JsonCheck("error", exists=False),)), obs(), 0.1, None),
    (
        "json-equals",
        Expectation(json=(JsonCheck("meta.count", equals=2, has_equals=True),)),
        obs(),
        0.1,
        None,
    ),
    (
        "json-equals-fail",
        Expectation(json=(JsonCheck("status", equals="down", has_equals=True),)),
        obs(),
        0.1,
        "server.assertion",
    ),
    (
        "json-bool-is-not-int",
        Expectation(json=(JsonCheck("items[1].n", equals=1, has_equals=True),)),
        obs(),
        0.1,
        "server.assertion",
    ),
    (
        "json-null",
        Expectation(json=(JsonCheck("x", equals=None, has_equals=True),)),
        obs(body=b'{"x": null}'),
        0.1,
        None,
    ),
    (
        "json-matches",
        Expectation(json=(JsonCheck("items[0].id", matches="^a$"),)),
        obs(),
        0.1,
        None,
    ),
    (
        "json-not-json",
        Expectation(json=(JsonCheck("items", exists=True),)),
        obs(body=b"<html>"),
        0.1,
        "server.assertion",
    ),
    (
        "json-on-non-list",
        Expectation(json=(JsonCheck("status", min_items=1),)),
        obs(),
        0.1,
        "server.assertion",
    ),
]


@pytest.mark.parametrize(
    ("expect", "observation", "latency", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_check(
    expect: Expectation, observation: Response, latency: float, reason: str | None
) -> None:
    found = judge(expect, observation, latency)
    assert (found.reason if found else None) == reason
    if found:
        assert found.error


def test_truncated_body_is_said_in_the_message() -> None:
    found = judge(Expectation(body_contains="tail"), obs(body=b"x" * 1024, truncated=True), 0.1)
    assert found is not None
    assert "only the first 1KiB of the body were read" in found.error


@pytest.mark.parametrize(
    ("status", "accepted", "ok"),
    [
        (200, ("2xx",), True),
        (299, ("2xx",), True),
        (300, ("2xx",), False),
        (404, (404, "5xx"), True),
        (500, (404, "5xx"), True),
    ],
)
def test_status_matches(status: int, accepted: tuple[int | str, ...], ok: bool) -> None:
    assert status_matches(status, accepted) is ok


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["2026-11-22T10:00:00Z", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00"]
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abt"), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    body=st.one_of(
        _json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(4000, 6000).map(lambda n: b'{"t": 1' + b"0" * n + b"}"),
    ),
    path=st.sampled_from(["t", "a", "a.b", "t[0]", "a[-1].t", "b[2]"]),
    matches=st.none() | st.sampled_from(["^1", "(a+)+$", "\\d{4}-"]),
)
def test_any_body_under_json_checks_is_a_verdict(
    body: bytes, path: str, matches: str | None
) -> None:
    """Whatever JSON (or not-JSON) a server sends, the JSON checks and freshness give a
    verdict, never an exception: nesting, huge numbers, Infinity and NaN included."""
    checks = (
        JsonCheck(path=path, exists=True),
        JsonCheck(path=path, matches=matches, min_items=1),
        JsonCheck(path=path, max_age=30.0),
    )
    for one in checks:
        verdict = judge(Expectation(json=(one,)), Response(200, (), body), 0.1)
        assert verdict is None or (verdict.reason.value.startswith("server.") and verdict.error)
