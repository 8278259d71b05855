"""Runner logic with an injected transport (respx): retries, records, masking, order.

respx never fires the trace callback (docs/httpx.md), so timings and deadlines are
proven against real servers in test_probe_real.py, not here.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import respx

from synthprobe.models import Failure
from synthprobe.probers.base import Network
from synthprobe.redact import Redactor
from synthprobe.runner import Runner, kernel_timed, new_run_id
from synthprobe.steps import Step
from synthprobe.timing import Clock
from synthprobe.units import format_utc

from .conftest import run_specs, specs_from_yaml


async def api_resolver(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


NET = Network(resolver=api_resolver)


@respx.mock(assert_all_called=False)
def test_retry_until_success_reports_last_attempt(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("http://127.0.0.1/feed").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.ReadError("reset"),
            httpx.Response(200, json={}),
        ]
    )
    [r] = run_specs(
        specs_from_yaml("probes:\n  - {name: a, url: 'http://api.test.invalid/feed', retries: 3}"),
        NET,
    )
    assert route.call_count == 3
    assert r.ok and r.attempts == 3 and r.status == 200


@respx.mock
def test_host_header_keeps_the_name(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("http://127.0.0.1:8080/feed").mock(return_value=httpx.Response(200))
    run_specs(
        specs_from_yaml("probes:\n  - {name: a, url: 'http://api.test.invalid:8080/feed'}"), NET
    )
    assert route.calls.last.request.headers["host"] == "api.test.invalid:8080"


@respx.mock
def test_headers_and_secrets_masked_in_result(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(url__startswith="http://127.0.0.1/feed").mock(
        return_value=httpx.Response(500, text="nope")
    )
    text = """
probes:
  - name: a
    url: http://api.test.invalid/feed?token=${TOKEN}&sig=${TOKEN}
    headers: {Authorization: "Bearer ${TOKEN}", X-Probe: "yes"}
"""
    loaded_specs = specs_from_yaml(text, env={"TOKEN": "tok-123456"})
    [r] = run_specs(loaded_specs, NET, secrets=frozenset({"tok-123456"}))
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer tok-123456"  # sent for real...
    assert "tok-123456" not in repr(r)  # ...never recorded
    assert r.url == "http://api.test.invalid/feed?token=***&sig=***"
    assert (r.failure, r.reason) == (Failure.SERVER, "server.status")


@respx.mock
def test_results_come_back_in_config_order(respx_mock: respx.MockRouter) -> None:
    async def slow_first(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/0":
            await asyncio.sleep(0.2)
        return httpx.Response(200)

    respx_mock.get(url__startswith="http://127.0.0.1/").mock(side_effect=slow_first)
    specs = specs_from_yaml(
        "probes:\n"
        + "\n".join(f"  - {{name: p{i}, url: 'http://127.0.0.1/{i}'}}" for i in range(5))
    )
    seen: list[str] = []
    runner = Runner(concurrency=5, location="t", redactor=Redactor())
    results = asyncio.run(runner.run(specs, lambda r: seen.append(r.probe)))
    assert [r.probe for r in results] == [f"p{i}" for i in range(5)]
    assert seen[-1] == "p0"  # written as it finished, not held back for order


@respx.mock
def test_concurrency_limit_is_respected(respx_mock: respx.MockRouter) -> None:
    in_flight = 0
    peak = 0

    async def count(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200)

    respx_mock.get(url__startswith="http://127.0.0.1/").mock(side_effect=count)
    specs = specs_from_yaml(
        "probes:\n"
        + "\n".join(f"  - {{name: p{i}, url: 'http://127.0.0.1/{i}'}}" for i in range(40))
    )
    results = run_specs(specs, concurrency=4)
    assert all(r.ok for r in results)
    assert peak == 4


def test_run_id_is_a_sortable_ulid() -> None:
    a, b = new_run_id(1_700_000_000.0), new_run_id(1_700_000_001.0)
    assert len(a) == 26 and a < b
    assert set(a) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_format_utc() -> None:
    assert format_utc(0.1234) == "1970-01-01T00:00:00.123Z"
    assert format_utc(0.1234, always_ms=False) == "1970-01-01T00:00:00.123Z"
    assert format_utc(60.0, always_ms=False) == "1970-01-01T00:01:00Z"


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        pytest.param('{name: p, url: "http://127.0.0.1:1/"}', True, id="http"),
        pytest.param('{name: p, kind: feed, url: "http://127.0.0.1:1/"}', True, id="feed"),
        pytest.param(
            '{name: p, url: "http://127.0.0.1:1/", resolver: "127.0.0.1:53"}',
            False,
            id="own-resolver",
        ),
        pytest.param(
            '{name: p, url: "http://127.0.0.1:1/", steps: [{name: s, url: "http://127.0.0.1:1/"}]}',
            False,
            id="journey",
        ),
        pytest.param('{name: p, kind: tcp, url: "tcp://127.0.0.1:1"}', False, id="tcp"),
    ],
)
def test_which_probes_the_kernel_times(probe: str, expected: bool) -> None:
    # one decision for both the pacer's guard and whether a total is the sum of its steps
    [spec] = specs_from_yaml(f"probes:\n  - {probe}\n")
    assert kernel_timed(spec) is expected


def test_what_one_run_froze_is_collected_by_the_next_once_garbage() -> None:
    """The collector skips what a run starts with while it runs. `probe watch` runs
    again and again in one process: what one run froze and then let go must be
    collected when the next run starts, not stay frozen for good."""
    import gc
    import weakref

    from synthprobe.demo import refused_port

    class Cycle:
        me: object = None

    def cycle() -> Cycle:
        made = Cycle()
        made.me = made  # only the cycle collector frees it
        return made

    holder, port = refused_port()
    try:
        specs = specs_from_yaml(
            f"probes:\n  - name: refused\n    url: http://127.0.0.1:{port}/\n    timeout: 2s\n"
        )
        kept = [cycle()]  # alive when the first run starts: frozen with the rest
        gone = weakref.ref(kept[0])
        frozen: list[int] = []
        seen: list[bool] = []

        def on_result(_result: object) -> None:
            frozen.append(gc.get_freeze_count())
            seen.append(gone() is not None)

        runner = Runner(concurrency=1, location="test", redactor=Redactor(frozenset()))
        asyncio.run(runner.run(specs, on_result))
        kept.clear()  # garbage now, but frozen: no collection would look at it
        gc.collect()
        assert gone() is not None
        asyncio.run(runner.run(specs, on_result))  # as watch does: run after run
    finally:
        holder.close()
    assert len(frozen) == 2 and all(n > 0 for n in frozen)
    assert seen == [True, False]  # collected as the second run began


@pytest.mark.parametrize(
    ("raised", "kept"),
    [(None, True), (OSError, True), (asyncio.CancelledError, False), (ValueError, False)],
    ids=["ended", "peer-failed", "deadline-cut", "our-bug"],
)
def test_a_timed_step_keeps_its_time_only_when_it_ended_or_the_peer_failed_it(
    raised: type[BaseException] | None, kept: bool
) -> None:
    clock = Clock()
    with contextlib.suppress(BaseException), clock.timing(Step.CONNECT, OSError):
        if raised is not None:
            raise raised
    assert ("connect" in clock.durations) is kept
    # only a step that ended is no longer current; a failed or cut one says where
    assert clock.current is (None if raised is None else Step.CONNECT)
