"""Config loading: valid shapes as a table, invalid ones pinned to their exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthprobe.config import load_configs, load_sources
from synthprobe.config.schema import MAX_PROBLEMS
from synthprobe.errors import ConfigError
from synthprobe.models import Failure, HttpVersion, JsonCheck
from synthprobe.probers.live import LiveSpec, Variant
from synthprobe.probers.messaging import MessagingSpec
from synthprobe.probers.tcp import TcpSpec
from synthprobe.probers.upload import UploadSpec

TESTDATA = Path(__file__).parent / "testdata"
INVALID = sorted(TESTDATA.glob("invalid-*.yaml"))


def load(text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return load_sources([("t.yaml", text.encode())], env=env or {})


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return info.value.problems


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_message_is_pinned(path: Path) -> None:
    raw = path.read_bytes()
    expected = [
        line.split("# expect: ", 1)[1]
        for line in raw.decode().splitlines()
        if line.startswith("# expect: ")
    ]
    assert expected, f"{path.name} pins no message"
    with pytest.raises(ConfigError) as info:
        load_sources([(path.name, raw)], env={})
    assert info.value.problems == expected


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 20


def test_a_generated_file_with_one_mistake_everywhere_is_reported_capped() -> None:
    # 60 probes, each with a bad timeout and an unknown key: 120 problems
    text = "probes:\n" + "".join(
        f"  - {{name: p{i}, url: 'http://127.0.0.1/', timeout: never, colour: red}}\n"
        for i in range(60)
    )
    with pytest.raises(ConfigError) as info:
        load_sources([("gen.yaml", text.encode())], env={})
    problems = info.value.problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == f"... and {120 - MAX_PROBLEMS} more problems"
    # file order: probe by probe, line by line, both problems of each probe
    assert problems[0].startswith("gen.yaml:2: probes[0].")
    assert problems[1].startswith("gen.yaml:2: probes[0].")
    assert {p.split(": ")[1] for p in problems[:2]} == {"probes[0].timeout", "probes[0].colour"}
    assert problems[MAX_PROBLEMS - 1].startswith(f"gen.yaml:{2 + (MAX_PROBLEMS - 1) // 2}: ")


@pytest.mark.parametrize(
    ("block", "problems"),
    [
        pytest.param("{}", 0, id="nothing"),
        pytest.param("{timeout: 0s}", 1, id="one"),
        pytest.param("{timeout: 0s, retries: -1}", 2, id="two"),
        pytest.param("{timeout: 0s, retries: -1, expect: {status: [999]}}", 3, id="three"),
        pytest.param("{timeout: 0s, retries: -1, expect: {status: [999], json: 1}}", 4, id="four"),
    ],
)
def test_every_problem_of_a_probe_is_reported(block: str, problems: int) -> None:
    fields = block[1:-1]
    text = f"probes:\n  - {{name: a, url: 'http://127.0.0.1/'{', ' if fields else ''}{fields}}}"
    if not problems:
        assert load(text).probes
        return
    with pytest.raises(ConfigError) as info:
        load(text)
    assert len(info.value.problems) == problems, info.value.problems


def test_minimal_probe_gets_defaults() -> None:
    [spec] = load("probes:\n  - {name: a, url: 'http://127.0.0.1/'}").probes
    assert spec.kind == "http"
    assert spec.method == "GET"
    assert spec.timeout == 10.0
    assert spec.retries == 0
    assert spec.retry_on == {Failure.DNS, Failure.NETWORK, Failure.TIMEOUT}
    assert spec.expect.status == ("2xx",)
    assert spec.follow_redirects is True and spec.verify_tls is True
    assert spec.max_body == 10 * 1024 * 1024
    assert spec.source == "t.yaml:2"


def test_spec_example_parses() -> None:
    text = """
version: 1
settings: {concurrency: 50, output: probe-results.jsonl, location: eu-1}
defaults:
  timeout: 10s
  retries: 0
  retry_on: [dns, network, timeout]
  headers: {User-Agent: synthprobe}
  expect: {status: ["2xx"]}
probes:
  - name: feed-home
    kind: feed
    url: https://api.example.com/v1/feed?limit=10
    method: GET
    headers: {Authorization: "Bearer ${FEED_TOKEN}"}
    timeout: 5s
    tags: [critical]
    expect:
      status: [200, "2xx"]
      max_latency: 800ms
      body_contains: '"items"'
      body_regex: '...'
      headers: {content-type: 'application/json.*'}
      json:
        - {path: items, min_items: 1}
        # SPEC writes the next path unquoted: invalid YAML inside a flow mapping
        - {path: "items[0].id", exists: true}
        - {path: status, equals: ok}
  - name: upload-small
    kind: upload
    url: https://upload.example.com/v1/media
    upload: {size: 256KiB, field: file, filename: probe.mp4, content_type: video/mp4}
    expect: {status: [200, 201]}
  - name: live-main
    kind: live
    url: https://live.example.com/main/index.m3u8
    live: {check_advancing: true}
  - name: chat-roundtrip
    kind: messaging
    url: wss://chat.example.com/ws
    messaging: {send: '{"type":"ping"}', expect: pong}
"""
    loaded = load(text, {"FEED_TOKEN": "s3cr3t-token"})
    feed, upload, live, chat = loaded.probes
    assert loaded.settings == {
        "concurrency": 50,
        "output": "probe-results.jsonl",
        "location": "eu-1",
    }
    assert feed.headers == (("User-Agent", "synthprobe"), ("Authorization", "Bearer s3cr3t-token"))
    assert feed.timeout == 5.0
    assert feed.expect.status == (200, "2xx")
    assert feed.expect.max_latency == pytest.approx(0.8)
    assert feed.expect.json[1] == JsonCheck(path="items[0].id", exists=True)
    assert feed.expect.json[2].has_equals and feed.expect.json[2].equals == "ok"
    assert upload.method == "POST"
    assert upload.options == UploadSpec(256 * 1024, "file", "probe.mp4", "video/mp4")
    assert upload.expect.status == (200, 201)
    assert live.kind == "live" and live.options == LiveSpec(check_advancing=True)
    assert chat.method == "WS" and isinstance(chat.options, MessagingSpec)
    assert chat.options.expect == "pong"
    assert loaded.secrets == {"s3cr3t-token"}


@pytest.mark.parametrize(
    ("value", "env", "expected", "secret"),
    [
        ("${HOST}", {"HOST": "127.0.0.1"}, "127.0.0.1", True),
        ("${HOST:-127.0.0.2}", {}, "127.0.0.2", False),
        ("${HOST:-127.0.0.2}", {"HOST": ""}, "127.0.0.2", False),
        ("${HOST:-127.0.0.2}", {"HOST": "127.0.0.3"}, "127.0.0.3", True),
        ("$${HOST}", {}, "${HOST}", False),
        ("cost$5", {}, "cost$5", False),
    ],
    ids=["set", "default", "empty-uses-default", "set-beats-default", "escaped", "lone-dollar"],
)
def test_variable_expansion(value: str, env: dict[str, str], expected: str, secret: bool) -> None:
    loaded = load(f"probes:\n  - {{name: a, url: 'http://x.invalid/{value}'}}", env)
    assert loaded.probes[0].url == f"http://x.invalid/{expected}"
    assert bool(loaded.secrets) is secret


def test_public_vars_are_not_secrets() -> None:
    text = """
settings: {public_vars: [BASE_URL]}
probes:
  - {name: a, url: "${BASE_URL}/feed", headers: {X-Token: "${TOKEN}"}}
"""
    loaded = load(text, {"BASE_URL": "http://127.0.0.1:8787", "TOKEN": "abcdef"})
    assert loaded.secrets == {"abcdef"}


def test_defaults_merge_key_by_key() -> None:
    text = """
defaults:
  timeout: 3s
  headers: {User-Agent: synthprobe, X-Env: prod}
  expect: {status: [200], max_latency: 1s}
probes:
  - name: a
    url: http://127.0.0.1/
    headers: {x-env: staging}
    expect: {body_contains: ok}
  - name: b
    url: http://127.0.0.1/
    timeout: 1s
"""
    a, b = load(text).probes
    assert a.timeout == 3.0 and b.timeout == 1.0
    assert dict(a.headers) == {"User-Agent": "synthprobe", "x-env": "staging"}
    assert a.expect.status == (200,) and a.expect.max_latency == 1.0
    assert a.expect.body_contains == "ok"


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = """
common: &common {timeout: 2s, tags: [x]}
probes:
  - {<<: *common, name: a, url: "http://127.0.0.1/"}
"""
    with pytest.raises(ConfigError) as info:
        load(text)
    assert "common: unknown key" in info.value.problems[0]
    ok = "probes:\n  - &p {name: a, url: 'http://127.0.0.1/'}\n  - {<<: *p, name: b}\n"
    assert [p.name for p in load(ok).probes] == ["a", "b"]


MERGE_CASES = [
    pytest.param("{<<: *a, name: c}", 1.0, id="one-mapping"),
    pytest.param("{<<: [*a, *b], name: c}", 1.0, id="earlier-source-wins"),
    pytest.param("{<<: [*b, *a], name: c}", 2.0, id="order-decides"),
    pytest.param("{<<: [*a, *b], name: c, timeout: 3s}", 3.0, id="own-key-wins"),
    pytest.param("{timeout: 3s, <<: *a, name: c}", 3.0, id="own-key-wins-before-merge"),
]


@pytest.mark.parametrize(("probe", "timeout"), MERGE_CASES)
def test_merge_keys_follow_the_yaml_rule(probe: str, timeout: float) -> None:
    """YAML's merge keys: a mapping's own keys override merged ones, and earlier
    mappings in a merged list override later ones."""
    text = (
        "probes:\n"
        "  - &a {name: a, url: 'http://127.0.0.1/', timeout: 1s}\n"
        "  - &b {name: b, url: 'http://127.0.0.1/', timeout: 2s}\n"
        f"  - {probe}\n"
    )
    assert load(text).probes[2].timeout == timeout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "probes:\n  - {name: !!python/object:os.system a, url: 'http://127.0.0.1/'}\n",
            "t.yaml:2: probes[0].name: invalid YAML value: could not determine a "
            "constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
            id="unknown-tag",
        ),
        pytest.param(
            "probes:\n  - {name: a, url: 'http://127.0.0.1/', timeout: 2026-13-45}\n",
            "t.yaml:2: probes[0].timeout: invalid YAML value: month must be in 1..12",
            id="impossible-date",
        ),
        pytest.param(
            "x: &a 1\nprobes:\n  - {<<: *a, name: a, url: 'http://127.0.0.1/'}\n",
            "t.yaml:3: probes[0]: `<<` merges a mapping or a list of mappings only",
            id="merge-a-scalar",
        ),
        pytest.param(
            "probes: &p [*p]\n",
            "t.yaml:1: probes[0]: *p stands inside its own anchor: it nests without end",
            id="alias-inside-its-anchor",
        ),
        pytest.param(
            "k: &k {a: 1}\nprobes:\n  - {*k : a, url: 'http://127.0.0.1/'}\n",
            "t.yaml:3: probes[0]: a key must be a plain string",
            id="alias-to-a-mapping-as-key",
        ),
        pytest.param(
            "probes:\n  - {name: *x, url: 'http://127.0.0.1/'}\n",
            "t.yaml:2: invalid YAML: found undefined alias 'x'",
            id="undefined-alias",
        ),
        pytest.param(
            "a: &x 1\nb: &x 2\nprobes: []\n",
            "t.yaml:2: invalid YAML: second occurrence "
            "(found duplicate anchor 'x'; first occurrence at line 1)",
            id="duplicate-anchor",
        ),
        pytest.param(
            "probes: []\n---\nprobes: []\n",
            "t.yaml:2: invalid YAML: but found another document "
            "(expected a single document in the stream at line 1)",
            id="two-documents",
        ),
    ],
)
def test_yaml_value_problems_name_their_line(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_aliases_share_what_their_anchor_built() -> None:
    text = (
        "defaults: {expect: &e {status: [201]}}\n"
        "probes:\n"
        "  - {name: a, url: 'http://127.0.0.1/'}\n"
        "  - {name: b, url: 'http://127.0.0.1/', expect: *e}\n"
    )
    a, b = load(text).probes
    assert a.expect == b.expect and a.expect.status == (201,)
    assert a.expect is b.expect  # equal frozen values are held once


@pytest.mark.slow  # tracemalloc triples the load's 0.5 s
def test_a_big_config_never_holds_a_node_tree() -> None:
    """Memory, not time: building values from parser events (no composed node tree)
    and dropping each probe's tree once it is a spec keep the peak near the specs
    themselves. Composing took about 2.5 KB a probe at its peak on CPython 3.11."""
    import tracemalloc

    n = 5000
    raw = (
        "defaults: {timeout: 60s, expect: {status: [200]}}\nprobes:\n"
        + "".join(f'  - {{name: p{i}, url: "http://127.0.0.1:1/item?i={i}"}}\n' for i in range(n))
    ).encode()
    tracemalloc.start()
    try:
        loaded = load_sources([("big.yaml", raw)], env={})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(loaded.probes) == n
    assert (peak - len(raw)) / n < 1200, f"{peak / n:.0f} bytes a probe at the peak"


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("probes: *a9")
    found = problems("\n".join(lines))
    assert "aliases expanding without end" in found[0]


def test_deep_nesting_is_refused() -> None:
    found = problems("probes: " + "[" * 200 + "]" * 200)
    assert "nested more than 64 levels" in found[0]


def test_binary_garbage_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_sources([("bin.yaml", b"probes:\n  - \xff\xfe\x00garbage")], env={})
    assert info.value.problems == ["bin.yaml:2: not a text file (byte 0xff is not UTF-8)"]


def test_nul_byte_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_sources([("n.yaml", b"probes:\n\x00")], env={})
    assert info.value.problems == ["n.yaml:2: not a text file (NUL byte)"]


def test_empty_file() -> None:
    assert problems("") == ["t.yaml:1: the file is empty: expected a mapping with `probes:`"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_configs([str(tmp_path / "nope.yaml")])
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_configs([str(tmp_path)])
    assert "is a directory" in info.value.problems[0]


def test_duplicate_across_files_names_both(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("probes:\n  - {name: x, url: 'http://127.0.0.1/'}\n")
    b.write_text(
        "probes:\n  - {name: y, url: 'http://127.0.0.1/'}\n"
        "  - {name: x, url: 'http://127.0.0.1/'}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_configs([str(a), str(b)])
    assert info.value.problems == [
        f'{b}:3: probes.name: duplicate probe name "x" (first defined at {a}:2)'
    ]


def test_huge_numbers_are_errors_not_crashes() -> None:
    found = problems("probes:\n  - {name: a, url: 'http://127.0.0.1/', timeout: 1e400}")
    assert "bad duration" in found[0]
    found = problems("probes:\n  - {name: a, url: 'http://127.0.0.1/', retries: 99999999999}")
    assert "must be between 0 and 100" in found[0]


def test_kind_blocks_validate_for_later_kinds() -> None:
    text = """
probes:
  - name: live
    kind: live
    url: http://127.0.0.1/index.m3u8
    live: {check_advancing: true, variant: highest, segments: 2, max_age: 30s}
"""
    [spec] = load(text).probes
    assert spec.options == LiveSpec(True, Variant.HIGHEST, 2, 30.0)


@pytest.mark.parametrize(
    ("written", "version"),
    [
        ("auto", HttpVersion.AUTO),
        ('"1.1"', HttpVersion.HTTP1),
        ("1.1", HttpVersion.HTTP1),
        ('"2"', HttpVersion.HTTP2),
        ("2", HttpVersion.HTTP2),
    ],
    ids=["auto", "1.1-quoted", "1.1-number", "2-quoted", "2-number"],
)
def test_http_version_as_people_write_it(written: str, version: HttpVersion) -> None:
    text = f"probes:\n  - {{name: a, url: 'https://127.0.0.1/', http_version: {written}}}\n"
    [spec] = load_sources([("c.yaml", text.encode())], env={}).probes
    assert spec.http_version is version


def test_http_version_from_defaults_applies_to_http_kinds_only() -> None:
    text = """
defaults: {http_version: "2"}
probes:
  - {name: feed, kind: feed, url: "https://127.0.0.1/v1/feed"}
  - {name: cache, kind: tcp, url: "tcp://127.0.0.1:6379"}
"""
    feed, cache = load_sources([("c.yaml", text.encode())], env={}).probes
    assert feed.http_version is HttpVersion.HTTP2
    assert cache.http_version is HttpVersion.AUTO  # not for tcp: ignored, not an error


def test_tcp_block_reads_escapes_as_yaml_gives_them() -> None:
    text = (
        'probes:\n  - {name: c, kind: tcp, url: "tcp://127.0.0.1:1", tcp: {send: "PING\\r\\n"}}\n'
    )
    [spec] = load_sources([("c.yaml", text.encode())], env={}).probes
    assert isinstance(spec.options, TcpSpec) and spec.options.send == "PING\r\n"
    assert spec.method == "TCP"
