"""Users' patterns: compiled once at load by ``regex``, the engine that runs them; shown
everywhere as the text the user wrote; run within the per-search budget."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import time
from collections.abc import Callable
from typing import Any

import pytest
import regex

from synthprobe import expect, patterns
from synthprobe.classify import ProbeFailure
from synthprobe.config import load_sources
from synthprobe.errors import ConfigError
from synthprobe.models import Expectation, ProbeSpec
from synthprobe.patterns import Pattern

HTTP = "probes:\n  - name: a\n    url: http://127.0.0.1/\n"
STEP = "    steps:\n      - name: s\n        url: http://127.0.0.1/s\n"


def _capture(spec: ProbeSpec) -> Any:
    assert spec.journey is not None
    return spec.journey.capture[0].arg


def _step_capture(spec: ProbeSpec) -> Any:
    assert spec.journey is not None
    return spec.journey.steps[0].capture[0].arg


# (id, config with {P} where the pattern goes, the line it is on, its key, where the
# loaded spec holds it)
PLACES: list[tuple[str, str, int, str, Callable[[ProbeSpec], Any]]] = [
    (
        "body_regex",
        HTTP + "    expect:\n      body_regex: '{P}'\n",
        5,
        "probes[0].expect.body_regex",
        lambda s: s.expect.body_regex,
    ),
    (
        "expect.headers",
        HTTP + "    expect:\n      headers:\n        etag: '{P}'\n",
        6,
        "probes[0].expect.headers.etag",
        lambda s: s.expect.headers[0][1],
    ),
    (
        "json.matches",
        HTTP + "    expect:\n      json:\n        - {{path: id, matches: '{P}'}}\n",
        6,
        "probes[0].expect.json[0].matches",
        lambda s: s.expect.json[0].matches,
    ),
    (
        "answers.matches",
        "probes:\n  - name: a\n    kind: dns\n    url: dns:example.com\n"
        "    expect:\n      answers: {{matches: '{P}'}}\n",
        6,
        "probes[0].expect.answers.matches",
        lambda s: s.expect.answers.matches,
    ),
    (
        "tcp.expect_regex",
        "probes:\n  - name: a\n    kind: tcp\n    url: tcp://127.0.0.1:1\n"
        "    tcp:\n      expect_regex: '{P}'\n",
        6,
        "probes[0].tcp.expect_regex",
        lambda s: s.options.expect_regex,
    ),
    (
        "messaging.expect_regex",
        "probes:\n  - name: a\n    kind: messaging\n    url: ws://127.0.0.1/\n"
        "    messaging:\n      send: hi\n      expect_regex: '{P}'\n",
        7,
        "probes[0].messaging.expect_regex",
        lambda s: s.options.expect_regex,
    ),
    (
        "capture",
        HTTP + "    capture:\n      id: 'regex:{P}'\n" + STEP,
        5,
        "probes[0].capture.id",
        _capture,
    ),
    (
        "step.capture",
        HTTP + STEP + "        capture:\n          id: 'regex:{P}'\n",
        8,
        "probes[0].steps[0].capture.id",
        _step_capture,
    ),
]
IDS = [p[0] for p in PLACES]


def _load(text: str) -> ProbeSpec:
    [spec] = load_sources([("t.yaml", text.encode())], env={}).probes
    return spec


@pytest.mark.parametrize(("config", "where"), [(p[1], p[4]) for p in PLACES], ids=IDS)
def test_every_pattern_is_compiled_at_load_by_regex(
    config: str, where: Callable[[ProbeSpec], Any]
) -> None:
    # \p{L} and a variable-width look-behind: regex syntax that re refuses
    held = where(_load(config.format(P=r"(?<=a+)\p{L}+")))
    assert isinstance(held, Pattern)
    assert held == r"(?<=a+)\p{L}+"
    assert isinstance(held.compiled, regex.Pattern)
    assert held.compiled.pattern == held


@pytest.mark.parametrize(("config", "line", "key"), [(p[1], p[2], p[3]) for p in PLACES], ids=IDS)
@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("a{2,1}", "min repeat greater than max repeat at position 2"),
        ("(?P<n>x)(?P=m)", "unknown group at position 11"),
        ("(" * 3000, "nested too deep"),
    ],
    ids=["bad-repeat", "unknown-group", "nested-too-deep"],
)
def test_a_pattern_regex_refuses_names_line_and_key(
    config: str, line: int, key: str, written: str, why: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(config.format(P=written))
    assert info.value.problems == [f"t.yaml:{line}: {key}: bad regex {written!r}: {why}"]


def test_a_pattern_is_its_text_in_every_output() -> None:
    p = Pattern(r"id-(\d+)")
    expectation = Expectation(body_regex=p)
    assert str(p) == r"id-(\d+)" and type(str(p)) is str
    assert f"/{p}/" == r"/id-(\d+)/"
    assert json.dumps({"p": p}) == json.dumps({"p": r"id-(\d+)"})
    assert dataclasses.asdict(expectation)["body_regex"] == r"id-(\d+)"
    assert p == r"id-(\d+)" and hash(p) == hash(r"id-(\d+)")
    for copied in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert isinstance(copied, Pattern) and copied.compiled.pattern == p


def test_a_search_runs_the_compiled_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _load(PLACES[0][1].format(P=r"id-(\d+)"))
    pattern = spec.expect.body_regex
    assert pattern is not None

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again at run time")

    monkeypatch.setattr(regex, "compile", no_compiling)
    monkeypatch.setattr(regex, "search", no_compiling)
    assert expect.search(pattern, "<p>id-42</p>", "the body")
    m = expect.find(pattern, "<p>id-42</p>", "the body")
    assert m is not None and m.group(1) == "42"
    assert not expect.search(pattern, "<p>none</p>", "the body")


def test_a_search_keeps_its_time_budget() -> None:
    started = time.monotonic()
    with pytest.raises(ProbeFailure) as info:
        expect.search(Pattern("(x+x+)+y"), "x" * 5000, "the body")
    assert time.monotonic() - started < patterns.BUDGET + 1
    assert info.value.classified.reason.value == "server.assertion"
    assert str(info.value).startswith(f"/(x+x+)+y/ gave up after {patterns.BUDGET:g}s on 5,000")


def test_equal_expectations_stay_one_object() -> None:
    text = HTTP.replace("name: a", "name: a\n    expect: {body_regex: 'x+'}") + HTTP.replace(
        "probes:\n", ""
    ).replace("name: a", "name: b\n    expect: {body_regex: 'x+'}")
    a, b = load_sources([("t.yaml", text.encode())], env={}).probes
    assert a.expect is b.expect
