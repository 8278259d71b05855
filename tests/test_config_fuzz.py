"""Broken configs, generated: whatever the bytes, loading ends in a valid config or in
ConfigError lines that name the file (and line), never another exception or a hang."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthprobe.config import load_sources
from synthprobe.errors import ConfigError

from .commands import probe_cmd

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [
    (ROOT / "probes.example.yaml").read_bytes(),
    (ROOT / "src" / "synthprobe" / "demo.yaml").read_bytes(),
    b"version: 1\nsettings: {concurrency: 5}\ndefaults: {timeout: 2s, retries: 1}\nprobes:\n"
    b"  - {name: a, url: 'http://127.0.0.1/', expect: {status: [200], max_latency: 1s}}\n",
]
LINE = re.compile(r"^fuzz\.yaml(:\d+)?: \S")
ENV = {
    "DEMO_URL": "http://127.0.0.1:1",
    "DEMO_REFUSED": "http://127.0.0.1:2",
    "DEMO_WS": "ws://127.0.0.1:1",
}


def check(raw: bytes) -> None:
    try:
        load_sources([("fuzz.yaml", raw)], env=ENV)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert "\n" not in problem, problem
            assert LINE.match(problem), problem


REPLACEMENTS = [
    b"[[a-",
    b"(?P<",
    b"",
    b"-1",
    b"1e400",
    b"99999999999999999999999",
    b"[]",
    b"{}",
    b"~",
    b"yes",
    b"5 sec",
    b"*x",
    b"&x [",
    b"'",
    b'"',
    b"\t",
    b"${NOPE}",
    b"\xff\xfe",
    b"\x00",
    b"[[[[[[[[",
    b"!!python/object:os.system",
    b"<<: *a",
    b"2026-13-45",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        start = draw(st.integers(0, len(data) - 1))
        end = min(len(data), start + draw(st.integers(0, 40)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "bytes"]))
        if action == "delete":
            del data[start:end]
        elif action == "insert":
            data[start:start] = draw(st.sampled_from(REPLACEMENTS))
        elif action == "replace":
            data[start:end] = draw(st.sampled_from(REPLACEMENTS))
        else:
            data[start:end] = draw(st.binary(max_size=20))
    return bytes(data)


# derandomized in CI, so a red build is reproducible; random (exploring) elsewhere
@pytest.mark.slow  # 400 examples: about 1.5 s alone, more on a shared machine
@settings(
    max_examples=400,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
@given(mutated())
def test_mutated_configs_load_or_fail_cleanly(raw: bytes) -> None:
    check(raw)


@pytest.mark.slow
@pytest.mark.parametrize(
    "raw",
    [
        b"probes: " + b"[" * 10_000 + b"]" * 10_000,
        b"probes:\n" + b"  " * 5000 + b"- x",
        b"a: &a ["
        + b"x, " * 9
        + b"x]\n"
        + b"".join(
            b"a%d: &a%d [%s]\n" % (i, i, b", ".join([b"*a" if i == 1 else b"*a%d" % (i - 1)] * 9))
            for i in range(1, 12)
        )
        + b"probes: *a11\n",
        b"probes:\n  - {name: a, url: 'http://127.0.0.1/', timeout: -5s}\n",
        b"probes:\n  - {name: a, url: 'http://127.0.0.1/', retries: 1e999}\n",
        b"probes:\n  - {name: a, url: 'http://127.0.0.1/', max_body: 99999999999999999999999}\n",
        b"# " + b"x" * (10 * 1024 * 1024) + b"\nprobes:\n  - {name: a, url: 'http://127.0.0.1/'}\n",
        b"probes:\n"
        + b"".join(b"  - {name: p%d, url: 'http://127.0.0.1/'}\n" % i for i in range(20_000)),
        bytes(range(256)) * 100,
    ],
    ids=[
        "deep-flow",
        "deep-indent",
        "billion-laughs",
        "negative-duration",
        "huge-float",
        "huge-int",
        "10MB-file",
        "20k-probes",
        "binary",
    ],
)
def test_extreme_configs_are_quick_and_clean(raw: bytes) -> None:
    started = time.monotonic()
    check(raw)
    assert time.monotonic() - started < 20  # a loop bound, not a performance target


@pytest.mark.slow  # twelve child processes
def test_cli_on_mutations_exits_0_or_2_with_one_line_errors(tmp_path: Path) -> None:
    import random

    rng = random.Random(11)
    for n in range(12):
        data = bytearray(SEEDS[n % len(SEEDS)])
        for _ in range(3):
            at = rng.randrange(len(data))
            data[at : at + rng.randrange(30)] = rng.choice(REPLACEMENTS)
        path = tmp_path / f"m{n}.yaml"
        path.write_bytes(bytes(data))
        result = subprocess.run(
            probe_cmd("validate", str(path)),
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": ""},
        )
        assert result.returncode in (0, 2), result.stderr
        assert "Traceback" not in result.stderr
        if result.returncode == 2:
            lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert lines and all(str(path) in line for line in lines), result.stderr


ODD_VALUES = [
    "²",  # a digit to str.isdigit, not to int
    "٣٠٠",  # Arabic-Indic digits: int takes them
    "1²",
    "-0",
    "1e400",
    "99999999999999999999999",
    "NaN",
    "\u200b",
    "tcp:x:²",
    "dns:",
    "${NOPE}",
    "(" * 3000,  # a pattern nested deeper than the regex compiler recurses
    "[[a-",
    "regex:(",  # a capture whose pattern the engine refuses
    -1,
    1e400,
    True,
    None,
    [],
    {},
    ["²", "٣"],
    [{"a": "²"}],
]


def _odd_configs() -> list[tuple[str, dict[str, object]]]:
    """Every key of every table (settings, probe, expect, alert, JSON check, kind
    blocks), each given each odd value: the tables say which keys exist."""
    from synthprobe.config import expectations, journeys, settings
    from synthprobe.config.schema import PROBE_FIELDS
    from synthprobe.probers import KINDS

    probe = {"name": "a", "url": "http://127.0.0.1/"}
    out: list[tuple[str, dict[str, object]]] = []
    for key in sorted(settings.SETTINGS_FIELDS.keys):
        out.append((f"settings.{key}", {"settings": {key: None}, "probes": [probe]}))
    for key in sorted(PROBE_FIELDS.keys):
        out.append((key, {"probes": [{**probe, key: None}]}))
    for key in sorted(journeys.STEP_FIELDS.keys):
        step = {"name": "s", "url": "http://127.0.0.1/s", key: None}
        out.append((f"steps.{key}", {"probes": [{**probe, "steps": [step]}]}))
    for key in sorted(expectations.EXPECT_FIELDS.keys):
        out.append((f"expect.{key}", {"probes": [{**probe, "expect": {key: None}}]}))
    for key in sorted(expectations.JSON_CHECK_FIELDS.keys - {"path"}):
        check = {"path": "a", key: None}
        out.append((f"expect.json.{key}", {"probes": [{**probe, "expect": {"json": [check]}}]}))
    for key in sorted(settings.ALERT_FIELDS.keys):
        out.append((f"alert.{key}", {"probes": [{**probe, "alert": {key: None}}]}))
    for key in sorted(settings.WINDOW_FIELDS.keys):
        window = {"every": ["sunday"], "start": "03:00", "duration": "1h", key: None}
        out.append(
            (f"maintenance.{key}", {"settings": {"maintenance": [window]}, "probes": [probe]})
        )
    for name, info in KINDS.items():
        if info.block is None:
            continue
        import importlib

        table = importlib.import_module(f"synthprobe.probers.{name}").FIELDS
        url = {"tcp": "tcp://127.0.0.1:1", "dns": "dns:x.invalid", "messaging": "ws://127.0.0.1/"}
        kind_probe = {**probe, "kind": name, "url": url.get(name, probe["url"])}
        for key in sorted(table.keys):
            out.append((f"{name}.{key}", {"probes": [{**kind_probe, name: {key: None}}]}))
    return out


ODD = _odd_configs()


def _place(doc: object, value: object) -> object:
    """``doc`` with its one None (the key under test) replaced by ``value``."""
    if isinstance(doc, dict):
        return {k: value if v is None else _place(v, value) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_place(v, value) for v in doc]
    return doc


@pytest.mark.parametrize(("where", "doc"), ODD, ids=[o[0] for o in ODD])
def test_every_key_takes_every_odd_value_cleanly(where: str, doc: dict[str, object]) -> None:
    """No value of any key ends in anything but a config or ConfigError lines."""
    import json

    for value in ODD_VALUES:
        check(json.dumps(_place(doc, value)).encode())
