"""OpenTelemetry export: the SDK itself sends to a receiver of the tests' own, which
decodes what arrives with the official opentelemetry-proto messages (otlp_receiver.py).

The targets are the demo platform, recording the ``traceparent`` of each request it
gets, and a refused port; the command runs as cron runs it (a child process) wherever
its stderr, exit code or ``--workers`` matter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthprobe.demo import DemoPlatform, PlatformThread
from synthprobe.models import Otlp
from synthprobe.otel import export
from synthprobe.tracing import ExportTarget, export_target

from .commands import results as read_lines
from .commands import run_probe
from .conftest import run_specs, specs_from_yaml
from .otlp_receiver import Mode, Receiver, attributes, receiver
from .recording import Recording

CLIENT, INTERNAL = 3, 1  # OTLP Span.SpanKind
STATUS_OK, STATUS_ERROR = 1, 2
# no OTEL_* variable of the machine's may steer a test
CLEAN_ENV = {k: "" for k in os.environ if k.startswith("OTEL_")}


@pytest.fixture(scope="module")
def target() -> Iterator[Recording]:
    with PlatformThread(Recording()) as running:
        yield running


@pytest.fixture
def collector() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def to(url: str, **fields: Any) -> ExportTarget:
    found = export_target(url, None, {}, pytest.fail)
    assert found is not None
    return found._replace(**fields)


def journey_yaml(target: Recording, feed_expect: str = "{status: [200]}") -> str:
    return f"""
probes:
  - name: watch
    kind: feed
    timeout: 5s
    url: {target.base_url}/v1/login
    method: POST
    json: {{user: probe, password: demo-password}}
    capture: {{token: "json:access_token"}}
    mask: [token]
    steps:
      - name: feed
        url: {target.base_url}/v1/me/feed
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
        expect: {feed_expect}
"""


def tree(collector: Receiver) -> list[dict[str, Any]]:
    """Every span received, decoded into plain values."""
    out = []
    for span in collector.spans():
        out.append(
            {
                "name": span.name,
                "kind": span.kind,
                "trace_id": span.trace_id.hex(),
                "span_id": span.span_id.hex(),
                "parent": span.parent_span_id.hex(),
                "start": span.start_time_unix_nano,
                "end": span.end_time_unix_nano,
                "attributes": attributes(span.attributes),
                "events": [(e.name, e.time_unix_nano) for e in span.events],
                "status": (span.status.code, span.status.message),
            }
        )
    return out


def test_a_failed_journey_is_a_root_span_with_a_client_span_per_step(
    target: Recording, collector: Receiver
) -> None:
    target.seen.clear()
    [result] = run_specs(specs_from_yaml(journey_yaml(target, "{status: [204]}")))
    assert (result.reason, result.details["step"]) == ("server.status", "feed")
    export(to(collector.url), [result], result.run_id, pytest.fail)
    spans = tree(collector)
    [root] = [s for s in spans if s["parent"] == ""]
    steps = [s for s in spans if s["parent"] != ""]
    assert (root["name"], root["kind"]) == ("probe watch", INTERNAL)
    assert root["trace_id"] == result.trace_id
    assert root["attributes"] == {
        "synthprobe.probe": "watch",
        "synthprobe.kind": "feed",
        "synthprobe.location": "test",
        "synthprobe.run_id": result.run_id,
        "synthprobe.attempts": 1,
        "synthprobe.reason": "server.status",
        "error.type": "server.status",
    }
    assert root["status"] == (STATUS_ERROR, result.error)
    # a CLIENT span per step, under the root, with the span id its request carried
    received = [tp for _, tp in target.seen]
    assert [f"00-{s['trace_id']}-{s['span_id']}-01" for s in steps] == received
    assert all(s["parent"] == root["span_id"] and s["kind"] == CLIENT for s in steps)
    login, feed = steps
    assert (login["name"], feed["name"]) == ("POST", "GET")
    assert login["attributes"] == {
        "http.request.method": "POST",
        "url.full": f"{target.base_url}/v1/login",
        "server.address": "127.0.0.1",
        "server.port": target.port,
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    assert feed["attributes"]["error.type"] == "server.status"
    assert (login["status"][0], feed["status"][0]) == (0, STATUS_ERROR)  # unset, error
    # the phases as events: summed over the steps, the JSON line's numbers
    sums: dict[str, float] = {}
    for span in steps:
        assert [name for name, _ in span["events"]] == ["connect", "ttfb", "transfer"]
        at = span["start"]
        for name, ended in span["events"]:
            sums[name] = sums.get(name, 0.0) + (ended - at) / 1e6
            at = ended
        assert span["end"] == at
        assert root["start"] <= span["start"] and span["end"] <= root["end"]
    for phase, ms in sums.items():
        assert ms == pytest.approx(result.timings_ms[phase], abs=0.005), phase


def test_resource_and_metrics(target: Recording, collector: Receiver) -> None:
    text = f"""
probes:
  - {{name: up, url: "{target.base_url}/healthz"}}
  - {{name: down, url: "{target.base_url}/fault/status/503"}}
"""
    results = run_specs(specs_from_yaml(text))
    export(to(collector.url, service_name="edge-probes"), results, "RUN", pytest.fail)
    [message] = collector.traces()
    resource = attributes(message.resource_spans[0].resource.attributes)
    assert resource["service.name"] == "edge-probes"
    assert resource["service.version"] and resource["host.name"]
    [metrics] = collector.metrics()
    got: dict[tuple[str, str], Any] = {}
    for rm in metrics.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                which = metric.WhichOneof("data")
                for point in getattr(metric, which).data_points:
                    labels = attributes(point.attributes)
                    assert labels["synthprobe.kind"] == "http"
                    assert labels["synthprobe.location"] == "test"
                    got[(metric.name, labels["synthprobe.probe"])] = (which, point)
    assert got[("synthprobe.up", "up")][1].as_int == 1
    assert got[("synthprobe.up", "down")][1].as_int == 0
    kind, histogram = got[("synthprobe.duration", "up")]
    assert kind == "histogram" and histogram.count == 1
    assert histogram.sum == pytest.approx(results[0].timings_ms["total"] / 1000)


def test_retries_are_spans_of_one_trace(collector: Receiver, refused_url: str) -> None:
    text = f"""
probes:
  - {{name: r, url: "{refused_url}", retries: 1, timeout: 2s}}
"""
    [result] = run_specs(specs_from_yaml(text))
    assert result.attempts == 2
    export(to(collector.url), [result], "RUN", pytest.fail)
    spans = tree(collector)
    assert len(spans) == 3
    assert {s["trace_id"] for s in spans} == {result.trace_id}
    clients = [s for s in spans if s["kind"] == CLIENT]
    assert [s["attributes"]["error.type"] for s in clients] == ["network.refused"] * 2


def test_trace_context_false_still_exports_under_a_trace_of_its_own(
    target: Recording, collector: Receiver
) -> None:
    text = f'probes:\n  - {{name: p, url: "{target.base_url}/healthz", trace_context: false}}\n'
    [result] = run_specs(specs_from_yaml(text))
    assert result.trace_id is None
    export(to(collector.url), [result], "RUN", pytest.fail)
    assert len(tree(collector)) == 2


SECRET, HEADER_VALUE = "s3cr3t-from-env", "Bearer header-value-9f2"


@pytest.mark.slow
def test_no_secret_in_any_byte_sent_to_the_collector(
    target: Recording, collector: Receiver, tmp_path: Path
) -> None:
    """A ${VAR} value in a URL, a probe's header value and a masked capture (the demo's
    login token, sent in the next step's URL): none of them in any byte that arrived."""
    config = tmp_path / "probes.yaml"
    config.write_text(
        f"""
settings:
  otlp: {{endpoint: "{collector.url}", headers: {{x-api-key: collector-key}}}}
probes:
  - name: secret-url
    url: "{target.base_url}/healthz?key=${{PROBE_SECRET}}"
    headers: {{Authorization: "{HEADER_VALUE}"}}
  - name: capture
    kind: feed
    url: {target.base_url}/v1/login
    method: POST
    json: {{user: probe, password: demo-password}}
    capture: {{token: "json:access_token"}}
    mask: [token]
    steps:
      - {{name: feed, url: "{target.base_url}/v1/me/feed?t={{{{token}}}}",
          headers: {{Authorization: "Bearer {{{{token}}}}"}}}}
"""
    )
    out = tmp_path / "out.jsonl"
    done = run_probe(
        "run",
        str(config),
        "-o",
        str(out),
        "--no-state",
        "--format",
        "quiet",
        env={**CLEAN_ENV, "PROBE_SECRET": SECRET},
    )
    assert done.returncode == 0, done.stderr
    tokens = set(target._tokens)  # the captures the login handed out
    assert tokens
    sent = b"".join(r.raw for r in collector.got)
    assert {r.path for r in collector.got} == {"/v1/traces", "/v1/metrics"}
    for needle in (SECRET, HEADER_VALUE, "header-value", *tokens):
        assert needle.encode() not in sent, needle
    # the URLs are there, masked as in the JSON lines; the collector's key as a header only
    assert b"key=***" in sent or b"key=%2A%2A%2A" in sent
    assert all(r.headers.get("x-api-key") == "collector-key" for r in collector.got)
    assert all(b"collector-key" not in r.body for r in collector.got)
    lines = read_lines(out)
    urls = {
        a["url.full"]
        for s in collector.spans()
        for a in [attributes(s.attributes)]
        if "url.full" in a
    }
    assert {line["url"] for line in lines} <= urls


def config_file(tmp_path: Path, target_url: str, probes: int = 1) -> Path:
    path = tmp_path / "probes.yaml"
    path.write_text(
        "probes:\n"
        + "".join(f'  - {{name: p{i}, url: "{target_url}/healthz"}}\n' for i in range(probes))
        + f'  - {{name: broken, url: "{target_url}/fault/status/500"}}\n'
    )
    return path


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode",
    [Mode.REFUSING, Mode.SLOW, Mode.GARBAGE, Mode.GARBAGE_200, None],
    ids=["refusing-500", "slow-never-answers", "garbage-not-http", "garbage-200", "down"],
)
def test_a_collector_that_fails_costs_one_warning_and_changes_nothing(
    target: Recording, tmp_path: Path, mode: Mode | None, refused_url: str
) -> None:
    """Exit code, JSON lines and state as without export; one warning line at most
    (none for a 2xx answer, which the SDK counts as delivered, garbage or not)."""
    config = config_file(tmp_path, target.base_url)
    baseline = run_probe(
        "run",
        str(config),
        "-o",
        str(tmp_path / "base.jsonl"),
        "--state",
        str(tmp_path / "base.state"),
        "--format",
        "quiet",
        env=CLEAN_ENV,
    )
    with receiver(mode or Mode.OK) as bad:
        url = bad.url if mode is not None else refused_url
        done = run_probe(
            "run",
            str(config),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--state",
            str(tmp_path / "out.state"),
            "--format",
            "quiet",
            "--otlp",
            url,
            env=CLEAN_ENV,
        )
    assert (done.returncode, baseline.returncode) == (1, 1)
    assert done.stdout == baseline.stdout
    shown = warnings(done.stderr)
    assert len(shown) == (0 if mode is Mode.GARBAGE_200 else 1), done.stderr
    assert all("OTLP export to" in w for w in shown)
    assert [line for line in done.stderr.splitlines() if line.strip()] == shown  # nothing else
    assert warnings(baseline.stderr) == []
    strip = ("run_id", "ts", "timings_ms", "trace_id", "details", "since")
    mine = [
        {k: v for k, v in r.items() if k not in strip} for r in read_lines(tmp_path / "out.jsonl")
    ]
    theirs = [
        {k: v for k, v in r.items() if k not in strip} for r in read_lines(tmp_path / "base.jsonl")
    ]
    assert mine == theirs
    state, base_state = (
        json.loads((tmp_path / n).read_text()) for n in ("out.state", "base.state")
    )
    assert state.keys() == base_state.keys()


@pytest.mark.slow
def test_with_workers_every_span_reaches_the_collector_once(
    target: Recording, collector: Receiver, tmp_path: Path
) -> None:
    config = config_file(tmp_path, target.base_url, probes=5)
    out = tmp_path / "out.jsonl"
    done = run_probe(
        "run",
        str(config),
        "-o",
        str(out),
        "--no-state",
        "--format",
        "quiet",
        "--workers",
        "3",
        "--otlp",
        collector.url,
        env=CLEAN_ENV,
    )
    assert done.returncode == 1, done.stderr
    assert warnings(done.stderr) == []
    lines = read_lines(out)
    spans = tree(collector)
    roots = [s for s in spans if s["kind"] == INTERNAL]
    assert sorted(s["trace_id"] for s in roots) == sorted(line["trace_id"] for line in lines)
    assert len({s["span_id"] for s in spans}) == len(spans) == 2 * len(lines)
    assert len(collector.traces()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_HEADERS": "api-key"}, "OTEL_EXPORTER_OTLP_HEADERS is malformed"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL",
        ),
    ],
    ids=["headers", "endpoint"],
)
def test_a_malformed_variable_is_one_warning_and_no_export(
    target: Recording, collector: Receiver, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    config = config_file(tmp_path, target.base_url)
    done = run_probe(
        "run",
        str(config),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--no-state",
        "--format",
        "quiet",
        env={**CLEAN_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, **env},
    )
    assert done.returncode == 1
    [warning] = warnings(done.stderr)
    assert message in warning
    assert "api-key" not in warning and "collector:4318" not in warning
    assert collector.got == []
    assert len(read_lines(tmp_path / "o.jsonl")) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "yaml", "named"),
    [
        (["--otlp", "grpc://127.0.0.1:4317"], "", "--otlp: expected an http(s) URL"),
        (
            [],
            "settings:\n  otlp: {endpoint: 'collector:4318'}\n",
            "settings.otlp.endpoint: expected an http(s) URL",
        ),
    ],
    ids=["option", "setting"],
)
def test_an_endpoint_that_is_not_http_is_exit_2(
    tmp_path: Path, args: list[str], yaml: str, named: str
) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(yaml + 'probes:\n  - {name: p, url: "http://127.0.0.1:1/"}\n')
    done = run_probe(
        "run", str(config), "--no-state", "-o", str(tmp_path / "o"), *args, env=CLEAN_ENV
    )
    assert done.returncode == 2
    assert named in done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("option", "configured", "env", "expected"),
    [
        (None, None, {}, None),
        (
            "http://c:4318",
            None,
            {},
            ("http://c:4318/v1/traces", "http://c:4318/v1/metrics", (), "synthprobe"),
        ),
        (
            None,
            Otlp("https://c/otlp/", (("k", "v"),)),
            {},
            ("https://c/otlp/v1/traces", "https://c/otlp/v1/metrics", (("k", "v"),), "synthprobe"),
        ),
        (
            "http://cli:1",
            Otlp("http://cfg:2"),
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:3"},
            ("http://cli:1/v1/traces", "http://cli:1/v1/metrics", (), "synthprobe"),
        ),
        (
            None,
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:3"},
            ("http://env:3/v1/traces", "http://env:3/v1/metrics", (), "synthprobe"),
        ),
        (
            None,
            None,
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"},
            ("http://t:1/x", None, (), "synthprobe"),
        ),
        (
            None,
            None,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:3",
                "OTEL_EXPORTER_OTLP_HEADERS": "a=b%20c, d = e",
                "OTEL_SERVICE_NAME": "edge",
            },
            ("http://e:3/v1/traces", "http://e:3/v1/metrics", (("a", "b c"), ("d", "e")), "edge"),
        ),
        ("http://cli:1", None, {"OTEL_SDK_DISABLED": "true"}, None),
        ("http://cli:1", None, {"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "warn"),
        (None, None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "t:1"}, "warn"),
    ],
    ids=[
        "none",
        "option",
        "setting",
        "option-first",
        "env",
        "env-traces-only",
        "env-headers-service",
        "sdk-disabled",
        "bad-headers",
        "bad-traces-endpoint",
    ],
)
def test_export_target(
    option: str | None, configured: Otlp | None, env: dict[str, str], expected: Any
) -> None:
    said: list[str] = []
    found = export_target(option, configured, env, said.append)
    if expected == "warn":
        assert found is None and len(said) == 1
        return
    assert said == []
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert (found.traces_url, found.metrics_url, found.headers, found.service_name) == expected


def test_without_an_endpoint_no_opentelemetry_module_is_imported(
    target: Recording, tmp_path: Path
) -> None:
    config = config_file(tmp_path, target.base_url)
    done = run_probe(
        "run",
        str(config),
        "-o",
        "-",
        "--no-state",
        "--format",
        "quiet",
        env={**CLEAN_ENV, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert done.returncode == 1
    imported = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert any("synthprobe.tracing" in line for line in imported)  # the check can see
    assert not [line for line in imported if "opentelemetry" in line]


def test_a_large_run_goes_in_batches_and_every_span_arrives_once(
    target: Recording, collector: Receiver
) -> None:
    from dataclasses import replace

    from synthprobe.otel import BATCH
    from synthprobe.tracing import new_span_id, new_trace_id

    [one] = run_specs(
        specs_from_yaml(f'probes:\n  - {{name: p, url: "{target.base_url}/healthz"}}\n')
    )
    assert one.trace is not None
    many = []
    for i in range(BATCH // 2 + 50):  # two spans each: more than one batch
        request = one.trace.requests[0]._replace(span_id=new_span_id())
        trace = one.trace._replace(
            trace_id=new_trace_id(), span_id=new_span_id(), requests=(request,)
        )
        many.append(replace(one, probe=f"p{i}", trace=trace))
    export(to(collector.url), many, "RUN", pytest.fail)
    assert len(collector.traces()) == 2
    spans = tree(collector)
    assert len(spans) == len({s["span_id"] for s in spans}) == 2 * len(many)


def test_a_grpc_health_check_is_a_client_span_of_its_probe(collector: Receiver) -> None:
    """The grpc kind sends its traceparent as metadata (tests/test_grpc_real.py reads
    it as the server got it); here, its span arrives under the probe's root."""
    with PlatformThread(DemoPlatform(extras=True)) as demo:
        text = f'probes:\n  - {{name: g, kind: grpc, url: "grpc://127.0.0.1:{demo.grpc_port}"}}\n'
        [result] = run_specs(specs_from_yaml(text))
    assert result.ok, result.error
    export(to(collector.url), [result], "RUN", pytest.fail)
    spans = tree(collector)
    [root] = [s for s in spans if s["kind"] == INTERNAL]
    [call] = [s for s in spans if s["kind"] == CLIENT]
    assert root["trace_id"] == call["trace_id"] == result.trace_id
    assert call["parent"] == root["span_id"]
    assert result.trace is not None and call["span_id"] == result.trace.requests[0].span_id
    assert call["attributes"]["url.full"] == f"grpc://127.0.0.1:{demo.grpc_port}"
