"""Two locations into Prometheus, end to end, with the real programs: `probe run --prom`
of two locations writing into ONE textfile directory, Debian's node_exporter exporting
it, Prometheus evaluating the shipped rules (durations shortened for the test), and
Alertmanager delivering to a webhook receiver of this test. Everything on 127.0.0.1.

The timeline asserted: one location down (and a stale third file saying down) never
pages critical, only warns; two locations down page critical; mended, it resolves; a
location that judged itself cut off does not count toward the quorum; a location that
stops running goes stale.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from synthprobe.models import Failure, Reason
from synthprobe.output.files import write_atomic
from synthprobe.output.prom import prom_text

from .commands import probe_cmd
from .probing import write_config
from .realprograms import free_port, listening, need, stop, wait_until
from .results import make_result

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "synthprobe.rules.yml"
NODE_EXPORTER = shutil.which("prometheus-node-exporter")
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager")
STALE_AFTER = 15
"""Seconds without a run before a location is stale, in the test's copy of the rules."""


def _test_rules(text: str) -> str:
    """The shipped rules with test durations: every `for:` 2s, staleness 15 s."""
    text = re.sub(r"for: \d+m", "for: 2s", text)
    return text.replace("< 600", f"< {STALE_AFTER}").replace("> 600", f"> {STALE_AFTER}")


@dataclass
class Platform:
    """What each location's probe gets: path -> status (or a refused port)."""

    status: dict[str, int] = field(default_factory=dict)


@dataclass
class Receiver:
    """The webhook Alertmanager delivers to: every notification, as it came."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[tuple[str, str, dict[str, str]]]:
        """(status, alertname, labels) of every alert in every notification, in order."""
        with self.lock:
            return [
                (a["status"], a["labels"]["alertname"], a["labels"])
                for post in self.posts
                for a in post["alerts"]
            ]

    def seen(self, status: str, name: str, **labels: str) -> bool:
        return any(
            s == status and n == name and all(got.get(k) == v for k, v in labels.items())
            for s, n, got in self.alerts()
        )


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, int(httpd.server_address[1])


@pytest.fixture
def platform() -> Iterator[tuple[Platform, int]]:
    state = Platform({"/a": 200, "/b": 200})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state.status.get(self.path, 404))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd, port = _serve(Handler)
    yield state, port
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with got.lock:
                got.posts.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd, port = _serve(Handler)
    yield got, port
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def stack(receiver: tuple[Receiver, int]) -> Iterator[tuple[Path, int]]:
    """node_exporter on a textfile directory -> Prometheus (shipped rules) -> Alertmanager
    -> the receiver. Yields the textfile directory and Prometheus's port."""
    need(NODE_EXPORTER, "prometheus-node-exporter")
    need(PROMETHEUS, "prometheus")
    need(ALERTMANAGER, "prometheus-alertmanager")
    _, hook_port = receiver
    work = Path(tempfile.mkdtemp(prefix="synthprobe-fleet-"))
    textfiles = work / "textfile"
    textfiles.mkdir()
    node_port, prom_port, am_port = free_port(), free_port(), free_port()
    (work / "am.yml").write_text(
        f"""
route:
  receiver: hook
  group_by: [alertname, probe, location]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/
        send_resolved: true
"""
    )
    (work / "rules.yml").write_text(_test_rules(RULES.read_text()))
    (work / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{node_port}"]}}]
"""
    )
    logs = {name: (work / f"{name}.log").open("wb") for name in ("node", "am", "prometheus")}
    procs = [
        subprocess.Popen(
            [
                str(NODE_EXPORTER),
                f"--web.listen-address=127.0.0.1:{node_port}",
                "--collector.disable-defaults",
                "--collector.textfile",
                f"--collector.textfile.directory={textfiles}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=logs["node"],
        ),
        subprocess.Popen(
            [
                str(ALERTMANAGER),
                f"--config.file={work / 'am.yml'}",
                f"--storage.path={work / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # no gossip: nothing beyond loopback
            ],
            stdout=subprocess.DEVNULL,
            stderr=logs["am"],
        ),
        subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=logs["prometheus"],
        ),
    ]
    try:
        for port in (node_port, am_port, prom_port):
            wait_until(lambda p=port: listening(p), 30, f"port {port}")
        yield textfiles, prom_port
    finally:
        for proc in procs:
            stop(proc)  # type: ignore[arg-type]
        for log in logs.values():
            log.close()
        shutil.rmtree(work, ignore_errors=True)


class Location:
    """One vantage point running `probe run --prom` every ~second, as cron would."""

    def __init__(self, name: str, config: Path, textfiles: Path) -> None:
        self.name = name
        self.config = config
        self.textfiles = textfiles
        self.running = threading.Event()
        self.codes: list[int] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _loop(self) -> None:
        for _ in range(600):  # bounded: at most 10 minutes of runs
            if self._stop.is_set():
                return
            if self.running.is_set():
                done = subprocess.run(
                    probe_cmd(
                        "run",
                        str(self.config),
                        "--location",
                        self.name,
                        "--prom",
                        str(self.textfiles / f"synthprobe-{self.name}.prom"),
                        "-o",
                        "/dev/null",
                        "--no-state",
                        "--format",
                        "quiet",
                    ),
                    capture_output=True,
                    timeout=60,
                )
                self.codes.append(done.returncode)
            self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(70)


def _config(path: Path, url: str, controls: list[str] | None = None) -> Path:
    probe = {"name": "feed", "kind": "feed", "url": url, "timeout": "2s"}
    settings = {"settings": {"controls": controls}} if controls else {}
    return write_config(path.parent, {**settings, "probes": [probe]}, path.name)


def _wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    wait_until(check, seconds, what)


def test_two_locations_page_exactly_as_they_should(
    platform: tuple[Platform, int],
    receiver: tuple[Receiver, int],
    stack: tuple[Path, int],
    tmp_path: Path,
) -> None:
    state, port = platform
    got, _ = receiver
    textfiles, _prom_port = stack
    refused = free_port()
    config_a = _config(tmp_path / "a.yaml", f"http://127.0.0.1:{port}/a")
    config_b = _config(tmp_path / "b.yaml", f"http://127.0.0.1:{port}/b")
    # a third location's file left behind long ago, saying down: it must count nothing
    old = make_result(
        "feed", ok=False, location="ap-1", failure=Failure.SERVER, reason=Reason.SERVER_STATUS
    )
    write_atomic(
        str(textfiles / "synthprobe-ap-1.prom"),
        prom_text([old], time.time() - 3600, "ap-1").encode(),
    )
    timeline: list[str] = []
    began = time.monotonic()

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic() - began:5.1f}s {what}")

    a = Location("eu-1", config_a, textfiles)
    b = Location("us-1", config_b, textfiles)
    try:
        a.running.set()
        b.running.set()
        # 1. one location down (and the stale third file): a warning, never critical
        state.status["/a"] = 503
        _wait(
            lambda: got.seen("firing", "SynthprobeProbeDownFromOneLocation", location="eu-1"),
            60,
            "the one-location warning",
        )
        mark("one location down: warning delivered")
        time.sleep(4)  # several evaluations past `for`: a quorum would have fired by now
        assert not got.seen("firing", "SynthprobeProbeDown"), got.alerts()
        # 2. both locations down: the quorum pages
        state.status["/b"] = 503
        _wait(lambda: got.seen("firing", "SynthprobeProbeDown", probe="feed"), 60, "quorum")
        mark("two locations down: critical delivered")
        # 3. mended: it resolves
        state.status["/a"] = state.status["/b"] = 200
        _wait(lambda: got.seen("resolved", "SynthprobeProbeDown", probe="feed"), 60, "resolve")
        mark("mended: resolved delivered")
        firing_before = sum(
            1 for s, n, _ in got.alerts() if s == "firing" and n == "SynthprobeProbeDown"
        )
        # 4. eu-1 down again; us-1 cut off (its target and its control refuse): no quorum
        _config(config_b, f"http://127.0.0.1:{refused}/b", [f"tcp:127.0.0.1:{refused}"])
        state.status["/a"] = 503
        _wait(lambda: 3 in b.codes[-2:], 30, "us-1 to find itself cut off (exit 3)")
        _wait(
            lambda: (
                sum(
                    1
                    for s, n, lab in got.alerts()
                    if s == "firing"
                    and n == "SynthprobeProbeDownFromOneLocation"
                    and lab.get("location") == "eu-1"
                )
                >= 2
            ),
            60,
            "the one-location warning again",
        )
        time.sleep(4)
        firing_after = sum(
            1 for s, n, _ in got.alerts() if s == "firing" and n == "SynthprobeProbeDown"
        )
        assert firing_after == firing_before, got.alerts()
        mark("eu-1 down, us-1 cut off: warning only")
        # 5. eu-1 stops running: stale, per location
        a.running.clear()
        _wait(lambda: got.seen("firing", "SynthprobeStale", location="eu-1"), 60, "stale")
        assert not got.seen("firing", "SynthprobeStale", location="us-1")
        mark("eu-1 stopped: stale delivered")
    finally:
        a.close()
        b.close()
    print("\n".join(timeline))
