"""State and notifications end to end: the real `probe run` command, runs in sequence
and at once, a webhook receiver reached through Apprise's json://, and a real SMTP
server (aiosmtpd) reached through mailto://."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from synthprobe.demo import DemoPlatform, PlatformThread

from .commands import probe_cmd, results, run_probe
from .realprograms import free_port


class Receiver:
    """A webhook on 127.0.0.1: records every JSON POST; ``failing`` answers 500."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.failing = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver.failing:
                    self.send_response(500)
                else:
                    receiver.messages.append(json.loads(body))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def site() -> Iterator[DemoPlatform]:
    """A demo platform of this module's own: these tests switch its faults."""
    with PlatformThread(DemoPlatform()) as running:
        yield running


def fault(site: DemoPlatform, mode: str | None) -> None:
    url = f"{site.base_url}/_demo/faults/feed"
    response = httpx.put(url, params={"mode": mode}) if mode else httpx.delete(url)
    assert response.status_code == 200


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "probes.yaml"
    path.write_text(body)
    return path


def probe(
    cfg: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    out = str(tmp_path / "r.jsonl")
    return run_probe("run", str(cfg), "-o", out, "--format", "changes", *args, env=env)


def lines(tmp_path: Path) -> list[dict[str, Any]]:
    return results(tmp_path / "r.jsonl")


@pytest.mark.slow
def test_one_down_one_still_down_one_up_across_runs(
    tmp_path: Path, site: DemoPlatform, receiver: Receiver
) -> None:
    cfg = config(
        tmp_path,
        f"""
settings:
  location: eu-1
  notify: ["{receiver.url}"]
  status_url: https://status.example.invalid
defaults:
  alert: {{failure_threshold: 2, remind_every: 1ms}}
probes:
  - {{name: feed-home, kind: feed, url: "{site.base_url}/v1/feed"}}
  - {{name: health, url: "{site.base_url}/healthz"}}
""",
    )
    try:
        steps = []
        for mode in (None, "503", "503", "503", None, None):
            fault(site, mode)
            done = probe(cfg, tmp_path)
            steps.append((done.returncode, done.stdout.strip(), len(receiver.messages)))
    finally:
        fault(site, None)
    codes = [s[0] for s in steps]
    assert codes == [0, 1, 1, 1, 0, 0]
    changes = [s[1] for s in steps]
    assert changes[0] == "" and changes[1] == ""  # up, then pending: nothing to say
    assert changes[2].startswith("DOWN feed-home (feed) eu-1 server.status: status 503")
    assert "(2 runs)" in changes[2]
    assert changes[3].startswith("STILL DOWN feed-home") and "(3 runs)" in changes[3]
    assert changes[4].startswith("UP feed-home (feed) eu-1 after ")
    assert changes[5] == ""
    # exactly one message per run that had an event, never one for the healthy probe
    assert [s[2] for s in steps] == [0, 0, 1, 2, 3, 3]
    titles = [m["title"] for m in receiver.messages]
    assert titles == [
        "synthprobe eu-1: 1 down",
        "synthprobe eu-1: 1 still down",
        "synthprobe eu-1: 1 up",
    ]
    assert all("status: https://status.example.invalid" in m["message"] for m in receiver.messages)
    states = [(r["probe"], r["state"], r.get("event")) for r in lines(tmp_path)]
    feed = [(s, e) for p, s, e in states if p == "feed-home"]
    assert feed == [
        ("up", None),
        ("pending", None),
        ("down", "down"),
        ("down", "reminder"),
        ("up", "up"),
        ("up", None),
    ]
    state = json.loads(Path(str(tmp_path / "r.state.json")).read_text())
    assert state["version"] == 1 and state["probes"]["feed-home"]["eu-1"]["state"] == "up"


def test_several_events_of_a_run_are_one_message(
    tmp_path: Path, site: DemoPlatform, receiver: Receiver, refused_url: str
) -> None:
    cfg = config(
        tmp_path,
        f"""
settings: {{location: eu-1, notify: ["{receiver.url}"]}}
probes:
  - {{name: a, url: "{refused_url}/a"}}
  - {{name: b, url: "{refused_url}/b"}}
  - {{name: c, url: "http://gone.invalid/"}}
""",
    )
    done = probe(cfg, tmp_path)
    assert done.returncode == 1
    assert len(done.stdout.strip().splitlines()) == 3
    [message] = receiver.messages
    assert message["title"] == "synthprobe eu-1: 3 down"
    assert len(message["message"].splitlines()) == 3


@pytest.mark.slow
def test_a_receiver_that_was_down_gets_the_event_once_late(
    tmp_path: Path, receiver: Receiver, refused_url: str
) -> None:
    cfg = config(
        tmp_path,
        f"""
settings: {{location: eu-1, notify: ["{receiver.url}"]}}
probes:
  - {{name: upload, kind: upload, url: "{refused_url}/v1/media"}}
""",
    )
    receiver.failing = True
    first = probe(cfg, tmp_path)
    assert first.returncode == 1  # a failing target never changes the exit code
    assert "did not accept 1 events" in first.stderr and "stay pending" in first.stderr
    state = json.loads((tmp_path / "r.state.json").read_text())
    assert len(state["probes"]["upload"]["eu-1"]["undelivered"]) == 1
    receiver.failing = False
    second = probe(cfg, tmp_path)
    assert second.stdout.strip() == ""  # no new event: still down, no reminder set
    [message] = receiver.messages
    assert message["message"].startswith("DOWN upload (upload) eu-1 network.refused")
    # late, and still leading to the failed result's trace (SPEC: the line ends with it)
    assert re.search(r" \(late\) trace [0-9a-f]{32}$", message["message"]), message["message"]
    probe(cfg, tmp_path)
    assert len(receiver.messages) == 1  # delivered once, never again
    state = json.loads((tmp_path / "r.state.json").read_text())
    assert state["probes"]["upload"]["eu-1"]["undelivered"] == []


@pytest.mark.slow
def test_overlapping_runs_send_exactly_one_message(
    tmp_path: Path, receiver: Receiver, refused_url: str
) -> None:
    cfg = config(
        tmp_path,
        f"""
settings: {{location: eu-1, notify: ["{receiver.url}"]}}
probes:
  - {{name: feed, kind: feed, url: "{refused_url}/v1/feed"}}
""",
    )
    runs = [
        subprocess.Popen(
            probe_cmd("run", str(cfg), "-o", str(tmp_path / "r.jsonl"), "--format", "quiet"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 1 and "Traceback" not in err
    assert len(receiver.messages) == 1
    state = json.loads((tmp_path / "r.state.json").read_text())  # valid JSON
    assert state["probes"]["feed"]["eu-1"]["state"] == "down"
    assert len(lines(tmp_path)) == 4


@pytest.mark.parametrize(
    "damage",
    ["garbage", "empty", "truncated", "wrong-version", "not-utf8"],
)
def test_a_bad_state_file_is_moved_aside_and_the_run_goes_on(
    tmp_path: Path, damage: str, refused_url: str
) -> None:
    state = tmp_path / "r.state.json"
    state.write_bytes(
        {
            "garbage": b"\x00not json at all",
            "empty": b"",
            "truncated": b'{"version": 1, "probes": {"a": {"eu-1": {"state": "do',
            "wrong-version": b'{"version": 99, "probes": {}}',
            "not-utf8": b"\xff\xfe\x00{",  # unreadable as text
        }[damage]
    )
    cfg = config(tmp_path, f'probes:\n  - {{name: a, url: "{refused_url}/"}}\n')
    done = probe(cfg, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("moved to") == 1
    assert list(tmp_path.glob("r.state.json.corrupt-*"))
    assert json.loads(state.read_text())["probes"]["a"]
    assert len(lines(tmp_path)) == 1  # the result is recorded all the same


@pytest.mark.parametrize("where", ["directory", "missing-directory"])
def test_a_state_path_that_cannot_work_is_an_error_before_probing(
    tmp_path: Path, where: str, refused_url: str
) -> None:
    state = tmp_path / "given"
    if where == "directory":
        state.mkdir()
        (state / "keep.txt").write_text("mine")
    else:
        state = tmp_path / "nowhere" / "s.json"
    cfg = config(tmp_path, f'probes:\n  - {{name: a, url: "{refused_url}/"}}\n')
    done = probe(cfg, tmp_path, "--state", str(state))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"state file {state}" in done.stderr and "hint:" in done.stderr
    assert (tmp_path / "r.jsonl").read_bytes() == b""  # opened, but nothing probed
    if where == "directory":
        assert (state / "keep.txt").read_text() == "mine"  # never moved aside


@pytest.mark.slow
def test_maintenance_run_raises_nothing_and_freezes_counters(
    tmp_path: Path, receiver: Receiver, refused_url: str
) -> None:
    cfg = config(
        tmp_path,
        f"""
settings: {{location: eu-1, notify: ["{receiver.url}"]}}
probes:
  - {{name: a, url: "{refused_url}/"}}
""",
    )
    done = probe(cfg, tmp_path, "--maintenance")
    assert done.stdout.strip() == "" and receiver.messages == []
    assert lines(tmp_path)[0]["state"] == "maintenance"
    state = json.loads((tmp_path / "r.state.json").read_text())
    assert state["probes"] == {}  # counters frozen: the run never touched them


def test_configured_maintenance_window_covers_only_its_probes(
    tmp_path: Path, receiver: Receiver, refused_url: str
) -> None:
    cfg = config(
        tmp_path,
        f"""
settings:
  location: eu-1
  notify: ["{receiver.url}"]
  maintenance:
    - {{start: "2000-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z", only: [tag:cdn]}}
probes:
  - {{name: cdn, url: "{refused_url}/", tags: [cdn]}}
  - {{name: api, url: "{refused_url}/"}}
""",
    )
    probe(cfg, tmp_path)
    by_name = {r["probe"]: r for r in lines(tmp_path)}
    assert by_name["cdn"]["state"] == "maintenance" and "event" not in by_name["cdn"]
    assert by_name["api"]["state"] == "down" and by_name["api"]["event"] == "down"
    [message] = receiver.messages
    assert "cdn" not in message["message"].split()


@pytest.mark.slow
def test_no_state_means_no_fields_no_file_no_message(
    tmp_path: Path, receiver: Receiver, refused_url: str
) -> None:
    cfg = config(
        tmp_path,
        f'settings: {{notify: ["{receiver.url}"]}}\n'
        f'probes:\n  - {{name: a, url: "{refused_url}/"}}\n',
    )
    # --format changes needs a state: the plain table here
    out = str(tmp_path / "r.jsonl")
    done = run_probe("run", str(cfg), "-o", out, "--no-state", "--format", "quiet")
    assert done.returncode == 1, done.stderr
    assert "state" not in lines(tmp_path)[0]
    assert not (tmp_path / "r.state.json").exists() and receiver.messages == []


@pytest.mark.slow
def test_secret_in_a_notify_url_never_appears(tmp_path: Path, refused_url: str) -> None:
    secret = "hunter2-webhook-secret"
    dead = free_port()  # nobody listens: the warning names the target
    cfg = config(
        tmp_path,
        f"""
settings: {{notify: ["json://probe:${{HOOK_SECRET}}@127.0.0.1:{dead}/hook"]}}
probes:
  - {{name: a, url: "{refused_url}/"}}
""",
    )
    done = probe(cfg, tmp_path, env={"HOOK_SECRET": secret})
    assert "did not accept" in done.stderr
    listed = subprocess.run(
        probe_cmd("list", str(cfg), "--format", "json"),
        capture_output=True,
        text=True,
        env={**os.environ, "HOOK_SECRET": secret},
        timeout=60,
    )
    everything = [done.stdout, done.stderr, listed.stdout, listed.stderr]
    everything += [p.read_text(errors="replace") for p in tmp_path.iterdir() if p.is_file()]
    assert not any(secret in text for text in everything)


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.mails.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@pytest.mark.slow
def test_down_and_up_by_mail(tmp_path: Path, site: DemoPlatform, smtp: tuple[int, Mailbox]) -> None:
    port, box = smtp
    mailto = f"mailto://127.0.0.1:{port}?from=probe@example.invalid&to=ops@example.invalid"
    cfg = config(
        tmp_path,
        f"""
settings: {{location: eu-1, notify: ["{mailto}"]}}
probes:
  - {{name: feed-home, kind: feed, url: "{site.base_url}/v1/feed"}}
""",
    )
    try:
        for mode in (None, "503", "503", None):
            fault(site, mode)
            probe(cfg, tmp_path)
    finally:
        fault(site, None)
    assert len(box.mails) == 2
    assert "Subject: synthprobe eu-1: 1 down" in box.mails[0]
    assert "DOWN feed-home (feed) eu-1 server.status" in box.mails[0]
    assert "Subject: synthprobe eu-1: 1 up" in box.mails[1]


@pytest.mark.slow
def test_a_probes_own_notify_replaces_the_settings_list(tmp_path: Path, refused_url: str) -> None:
    general, own = Receiver(), Receiver()
    try:
        cfg = config(
            tmp_path,
            f"""
settings: {{location: eu-1, notify: ["{general.url}"]}}
probes:
  - {{name: a, url: "{refused_url}/a"}}
  - {{name: b, url: "{refused_url}/b", alert: {{notify: ["{own.url}"]}}}}
""",
        )
        probe(cfg, tmp_path)
        assert [m["message"].split()[1] for m in general.messages] == ["a"]
        assert [m["message"].split()[1] for m in own.messages] == ["b"]
    finally:
        general.close()
        own.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections and never answers: a hung notification target."""
    from .sockets import accepting

    with accepting(lambda conn: None) as port:
        yield port


@pytest.mark.slow
def test_a_hung_target_costs_a_bounded_wait_and_keeps_the_event(
    tmp_path: Path, refused_url: str
) -> None:
    with silent_listener() as port:
        cfg = config(
            tmp_path,
            f"""
settings: {{location: eu-1, notify: ["json://127.0.0.1:{port}/hook"]}}
probes:
  - {{name: a, url: "{refused_url}/"}}
""",
        )
        done = probe(cfg, tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "did not accept 1 events" in done.stderr
    state = json.loads((tmp_path / "r.state.json").read_text())
    [pending] = state["probes"]["a"]["eu-1"]["undelivered"]
    assert pending["lease"] is None  # released: the next run sends it


@pytest.mark.slow
def test_sigterm_while_sending_leaves_the_event_pending(tmp_path: Path, refused_url: str) -> None:
    with silent_listener() as port:
        cfg = config(
            tmp_path,
            f"""
settings: {{location: eu-1, notify: ["json://127.0.0.1:{port}/hook"]}}
probes:
  - {{name: a, url: "{refused_url}/"}}
""",
        )
        run = subprocess.Popen(
            probe_cmd("run", str(cfg), "-o", str(tmp_path / "r.jsonl"), "--format", "quiet"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        state_path = tmp_path / "r.state.json"
        for _ in range(300):  # until the event is leased: the run is sending it
            with contextlib.suppress(OSError, ValueError):
                doc = json.loads(state_path.read_text())
                if any(p["lease"] for p in doc["probes"]["a"]["eu-1"]["undelivered"]):
                    break
            time.sleep(0.02)
        else:
            run.kill()
            pytest.fail("the run never leased its event")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    assert "Traceback" not in err and "stopped by SIGTERM" in err
    doc = json.loads(state_path.read_text())
    [pending] = doc["probes"]["a"]["eu-1"]["undelivered"]
    assert pending["lease"] is None and len(pending["targets"]) == 1


@pytest.mark.slow
def test_only_keeps_the_events_of_targets_named_by_unselected_probes(
    tmp_path: Path, receiver: Receiver, refused_url: str, platform_url: str
) -> None:
    """`--only a` must not drop b's pending event as "no longer configured": b's own
    `alert.notify` is still in the config; the event is delivered, once, late."""
    cfg = config(
        tmp_path,
        f"""
settings: {{location: eu-1}}
probes:
  - {{name: a, url: "{platform_url}/v1/feed"}}
  - {{name: b, url: "{refused_url}/v1/feed", alert: {{notify: ["{receiver.url}"]}}}}
""",
    )
    receiver.failing = True
    assert probe(cfg, tmp_path).returncode == 1
    receiver.failing = False
    only = probe(cfg, tmp_path, "--only", "a")
    assert only.returncode == 0, only.stderr
    assert "no longer configured" not in only.stderr
    [message] = receiver.messages
    assert message["message"].startswith("DOWN b ")
