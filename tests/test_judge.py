"""One judge for every kind: what each kind observes decides the ``expect`` keys it
accepts (SPEC "Fourth wave"), and ``expect.judge`` checks every observation, latency
included, in one place."""

from __future__ import annotations

import json

import pytest

from synthprobe.errors import ConfigError
from synthprobe.expect import (
    OBSERVED,
    Answers,
    Observation,
    Reply,
    Response,
    Segments,
    Walked,
    judge,
)
from synthprobe.models import AnswerCheck, Expectation
from synthprobe.observes import judged_keys
from synthprobe.output.probes import describe
from synthprobe.probers import KINDS
from synthprobe.redact import Redactor

from .conftest import specs_from_yaml

OK = Response(200, (("content-type", "text/plain"),), b"hello")
ONE = Answers("a A", ("127.0.0.1",))

# (id, expectation, observation, latency s, reason or None)
JUDGED = [
    ("response-fast", Expectation(max_latency=0.5), OK, 0.4, None),
    ("response-slow", Expectation(max_latency=0.5), OK, 0.6, "server.slow"),
    ("status-first", Expectation(status=(404,), max_latency=0.1), OK, 0.6, "server.status"),
    ("reply-fast", Expectation(max_latency=0.5), Reply("+PONG"), 0.4, None),
    ("reply-slow", Expectation(max_latency=0.5), Reply("+PONG"), 0.501, "server.slow"),
    ("reply-no-limit", Expectation(), Reply(), 99.0, None),
    ("answers-slow", Expectation(max_latency=0.01), ONE, 0.02, "server.slow"),
    ("answers-wrong-first", Expectation(max_latency=0.01, answers=AnswerCheck(min=2)),
     ONE, 0.02, "dns.answer"),
    ("answers-fine", Expectation(answers=AnswerCheck(min=1)), ONE, 9.0, None),
    ("segments-slow", Expectation(max_latency=1.0), Segments(OK), 1.5, "server.slow"),
    ("segments-status", Expectation(status=(404,)), Segments(OK), 0.1, "server.status"),
    ("segments-header", Expectation(headers=(("content-type", "mpegurl"),)), Segments(OK), 0.1,
     "server.assertion"),
    # a journey's steps were judged as they ended, each against its own total
    ("walked-ignores-total", Expectation(max_latency=0.1), Walked(), 5.0, None),
    ("exactly-the-limit", Expectation(max_latency=0.25), Reply(), 0.25, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("expect", "observation", "latency", "reason"),
    [c[1:] for c in JUDGED],
    ids=[c[0] for c in JUDGED],
)
def test_judge_every_observation(
    expect: Expectation, observation: Observation, latency: float, reason: str | None
) -> None:
    found = judge(expect, observation, latency)
    assert (found.reason.value if found else None) == reason
    if found is not None and reason == "server.slow":
        assert f"took {latency * 1000:.0f}ms" in found.error


def test_without_a_latency_only_the_content_is_judged() -> None:
    """An upload (or a live playlist) asks whether to go on before its total is known."""
    assert judge(Expectation(max_latency=0.001), OK, None) is None
    failed = judge(Expectation(status=(201,)), OK, None)
    assert failed is not None and failed.reason.value == "server.status"


def test_a_certificate_is_judged_for_every_observation() -> None:
    soon = 1.0  # epoch second 1: long expired
    for observation in (OK, Reply(), Segments(OK), Walked()):
        failed = judge(Expectation(cert_min_days=1), observation, 0.1, soon)
        assert failed is not None and failed.reason.value == "server.cert_expiring", observation


def test_every_kind_declares_what_it_observes_and_the_judge_takes_it() -> None:
    for info in KINDS.values():
        assert info.observes in OBSERVED, info.name
        assert "max_latency" in judged_keys(info.observes), info.name


# --------------------------------------------------------------------------- config

KIND_URLS = {
    "http": ("http://127.0.0.1:9/", ""),
    "feed": ("http://127.0.0.1:9/", ""),
    "upload": ("http://127.0.0.1:9/", "upload: {size: 1KiB}"),
    "live": ("http://127.0.0.1:9/a.m3u8", ""),
    "messaging": ("ws://127.0.0.1:9/", "messaging: {send: hi, expect: hi}"),
    "tcp": ("tcp://127.0.0.1:9", ""),
    "dns": ("dns:a.invalid", ""),
    "grpc": ("grpcs://127.0.0.1:9", "grpc: {service: chat.v1.Messages}"),
}
VALUES = {
    "status": "[200]",
    "max_latency": "1s",
    "body_contains": "ok",
    "body_regex": "o+k",
    "headers": "{content-type: json}",
    "json": "[{path: a, exists: true}]",
    "cert_min_days": "7",
    "answers": "{min: 1}",
}
CONTRACT = {  # SPEC "Fourth wave", with cert_min_days where a URL may carry TLS
    "http": {"status", "max_latency", "body_contains", "body_regex", "headers", "json",
             "cert_min_days"},
    "live": {"status", "headers", "max_latency", "cert_min_days"},
    "messaging": {"max_latency", "cert_min_days"},
    "tcp": {"max_latency", "cert_min_days"},
    "dns": {"answers", "max_latency"},
    "grpc": {"max_latency", "cert_min_days"},
}  # fmt: skip
CONTRACT["feed"] = CONTRACT["upload"] = CONTRACT["http"]


def _probe(kind: str, expect: str) -> str:
    url, block = KIND_URLS[kind]
    extra = f"\n    {block}" if block else ""
    return f"  - name: p-{kind}\n    kind: {kind}\n    url: {url}{extra}\n    expect: {expect}\n"


def test_the_table_covers_every_kind() -> None:
    assert set(KIND_URLS) == set(KINDS) == set(CONTRACT)
    assert set(VALUES) == {k for keys in CONTRACT.values() for k in keys}


REFUSED = [(kind, key) for kind in CONTRACT for key in VALUES if key not in CONTRACT[kind]]
ACCEPTED = [(kind, key) for kind in CONTRACT for key in VALUES if key in CONTRACT[kind]]


@pytest.mark.parametrize(("kind", "key"), REFUSED, ids=[f"{k}-{key}" for k, key in REFUSED])
def test_a_key_the_kind_cannot_judge_is_refused(kind: str, key: str) -> None:
    text = "probes:\n" + _probe(kind, f"{{{key}: {VALUES[key]}}}")
    with pytest.raises(ConfigError) as caught:
        specs_from_yaml(text)
    line = text.splitlines().index(f"    expect: {{{key}: {VALUES[key]}}}") + 1
    [message] = caught.value.problems
    assert message.startswith(f"test.yaml:{line}: probes[0].expect.{key}: {key} does not apply to")
    assert f" {kind} probe (" in message


@pytest.mark.parametrize(("kind", "key"), ACCEPTED, ids=[f"{k}-{key}" for k, key in ACCEPTED])
def test_a_key_the_kind_can_judge_is_read(kind: str, key: str) -> None:
    [spec] = specs_from_yaml("probes:\n" + _probe(kind, f"{{{key}: {VALUES[key]}}}"))
    assert getattr(spec.expect, key) != getattr(Expectation(), key)


def test_every_refused_key_of_a_file_is_reported() -> None:
    text = "probes:\n" + "".join(
        _probe(kind, "{" + ", ".join(f"{k}: {VALUES[k]}" for k in VALUES) + "}")
        for kind in CONTRACT
    )
    with pytest.raises(ConfigError) as caught:
        specs_from_yaml(text)
    refused = [p for p in caught.value.problems if "does not apply" in p]
    assert len(refused) == len(caught.value.problems) == len(REFUSED)


def test_keys_from_defaults_are_dropped_for_a_kind_that_cannot_judge_them() -> None:
    every = "{" + ", ".join(f"{k}: {VALUES[k]}" for k in VALUES if k != "answers") + "}"
    text = f"defaults:\n  expect: {every}\nprobes:\n" + "".join(
        _probe(kind, "{max_latency: 2s}") for kind in CONTRACT
    )
    specs = {s.kind: s for s in specs_from_yaml(text)}
    default = Expectation()
    for kind, spec in specs.items():
        for key in VALUES:
            kept = getattr(spec.expect, key) != getattr(default, key)
            assert kept == (key in CONTRACT[kind] and key != "answers"), (kind, key)
        assert spec.expect.max_latency == 2.0


def test_probe_list_shows_what_is_judged() -> None:
    """A dropped key is not shown as if it applied (``probe list --format json``)."""
    text = "defaults:\n  expect: {status: [200]}\nprobes:\n" + _probe("tcp", "{max_latency: 1s}")
    [spec] = specs_from_yaml(text)
    shown = describe(spec, Redactor(frozenset()))["expect"]
    assert shown == {"max_latency": "1s"}, json.dumps(shown)
