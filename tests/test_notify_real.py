"""Notifications for a fleet, end to end with the real `probe` command: secrets in
notify URLs never printed, one event a line in a real mail (aiosmtpd), Apprise's own
verdict in `probe validate`, a mailto:// form with an IP host, an outage reaching a
target configured later, overlapping runs writing each event in one JSON line, JUnit's
status and the nightly report's silence under cron."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import pty
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from .commands import probe_cmd, results, run_probe
from .test_alerting_real import Receiver


class Switch:
    """An HTTP endpoint on 127.0.0.1 answering ``status``. With ``barrier``, no request
    is answered before that many have arrived (runs are then known to overlap); with
    ``gate``, none before the test opens it."""

    def __init__(self, barrier: int = 0) -> None:
        self.status = 200
        self.barrier = threading.Barrier(barrier, timeout=30) if barrier else None
        self.gate: threading.Event | None = None
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if switch.barrier is not None:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        switch.barrier.wait()
                if switch.gate is not None:
                    switch.gate.wait(60)
                self.send_response(switch.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self.barrier is not None:
            self.barrier.abort()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def switch() -> Iterator[Switch]:
    s = Switch()
    try:
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def dead_port() -> Iterator[int]:
    """A port bound but not listening: every connection is refused, and nobody else
    can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


class Mailbox:
    """aiosmtpd's handler: each mail parsed; with AUTH, the logins it was given."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.logins: list[tuple[str, bytes, bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(parsed)
        return "250 OK"

    def authenticate(
        self, server: object, session: object, envelope: object, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append((mechanism, data.login, data.password))
        return AuthResult(success=data.password == b"s3cret-smtp-pw")


@contextlib.contextmanager
def smtp_server(auth: bool, tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, Mailbox]]:
    """aiosmtpd on 127.0.0.1. With ``tls``, STARTTLS is offered and required before
    AUTH (aiosmtpd's default); without, AUTH is allowed in clear (a relay on this host)."""
    box = Mailbox()
    with dead_port() as port:
        pass  # a port nobody holds now; aiosmtpd binds it at once
    extra: dict[str, Any] = {}
    if auth:
        extra = {"authenticator": box.authenticate, "auth_require_tls": tls is not None}
    if tls is not None:
        extra |= {"tls_context": tls, "require_starttls": True}
    controller = Controller(box, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def body_lines(mail: EmailMessage) -> list[str]:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None, mail.as_string()
    return [line for line in part.get_content().splitlines() if line.strip()]


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "probes.yaml"
    path.write_text(body)
    return path


def run(
    cfg: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    out = str(tmp_path / "r.jsonl")
    return run_probe("run", str(cfg), "-o", out, "--format", "changes", *args, env=env)


APPRISE_IMPORT = pytest.mark.filterwarnings(
    # Apprise's mail plugin imports the stdlib's imghdr (deprecated in 3.11) when
    # loaded in this process; `probe` itself runs with Python's default filters
    "ignore:'imghdr' is deprecated:DeprecationWarning"
)

# 1. notify URLs printed only as Apprise renders them with privacy=True


SECRETS = ["tok-SECRET1", "key-SECRET2", "pass-SECRET3", "pass-SECRET4", "tk_SECRET5x"]


def secret_urls(port: int) -> list[str]:
    mail = "from=probe@example.invalid&to=ops@example.invalid"
    return [
        f"json://127.0.0.1:{port}/hook?token=tok-SECRET1&apikey=key-SECRET2",
        f"mailto://probe:pass-SECRET3@127.0.0.1:{port}?{mail}",
        f"mailto://127.0.0.1:{port}?user=probe&pass=pass-SECRET4&{mail}",
        f"ntfy://127.0.0.1:{port}/topic?token=tk_SECRET5x",
    ]


@pytest.mark.slow
def test_literal_secrets_in_notify_urls_never_appear_in_warnings(tmp_path: Path) -> None:
    with dead_port() as port, dead_port() as probed:
        urls = secret_urls(port)
        cfg = config(
            tmp_path,
            "settings:\n  location: eu-1\n  notify:\n"
            + "".join(f'    - "{u}"\n' for u in urls)
            + f'probes:\n  - {{name: a, url: "http://127.0.0.1:{probed}/"}}\n',
        )
        done = run(cfg, tmp_path)
        listed = run_probe("list", str(cfg), "--format", "json")
        validated = run_probe("validate", str(cfg))
    assert done.returncode == 1, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "did not accept" in line]
    assert len(warnings) == len(urls), done.stderr
    # each target is named, as Apprise renders it
    for scheme in ("json://", "mailto://probe:****@", "ntfy://"):
        assert any(scheme in w for w in warnings), warnings
    everything = [done.stdout, done.stderr, listed.stdout, listed.stderr]
    everything += [validated.stdout, validated.stderr]
    everything += [p.read_text(errors="replace") for p in tmp_path.iterdir() if p.is_file()]
    # the config file itself holds them: it is the user's, not our output
    everything.remove(cfg.read_text())
    for secret in SECRETS:
        assert not any(secret in text for text in everything), secret


@pytest.mark.parametrize(
    ("index", "kept"),
    [
        pytest.param(0, "json://127.0.0.1:", id="json-token-apikey"),
        pytest.param(1, "mailto://probe:****@127.0.0.1:", id="mailto-userinfo"),
        pytest.param(2, "mailto://probe:****@127.0.0.1:", id="mailto-pass-param"),
        pytest.param(3, "ntfy://", id="ntfy-token"),
    ],
)
@APPRISE_IMPORT
def test_shown_is_apprises_privacy_rendering(index: int, kept: str) -> None:
    from synthprobe.notify import shown

    text = shown(secret_urls(9)[index])
    assert text.startswith(kept)
    assert not any(secret in text for secret in SECRETS)


@APPRISE_IMPORT
def test_a_url_apprise_cannot_load_is_shown_as_its_scheme_only() -> None:
    from synthprobe.notify import load

    loaded = load("nosuchscheme://probe:pw-SECRET9@host/x?pass=pw-SECRET9")
    assert loaded.plugin is None and loaded.shown == "nosuchscheme://..."
    assert "pw-SECRET9" not in loaded.problem and "no Apprise service" in loaded.problem


# 2 and 4. one event a line in a real mail; a mailto:// form with an IP host and a port


def test_three_events_are_three_lines_of_the_mail(tmp_path: Path) -> None:
    with smtp_server(auth=False) as (port, box), dead_port() as probed:
        mailto = f"mailto://127.0.0.1:{port}?from=probe@example.invalid&to=ops@example.invalid"
        cfg = config(
            tmp_path,
            f"""
settings: {{location: eu-1, notify: ["{mailto}"]}}
probes:
  - {{name: a, url: "http://127.0.0.1:{probed}/a"}}
  - {{name: b, url: "http://127.0.0.1:{probed}/b"}}
  - {{name: c, url: "http://127.0.0.1:{probed}/c"}}
""",
        )
        done = run(cfg, tmp_path)
    assert done.returncode == 1 and "warning" not in done.stderr, done.stderr
    [mail] = box.mails
    assert mail["Subject"] == "synthprobe eu-1: 3 down"
    lines = body_lines(mail)  # in the order the results came, whichever that was
    assert sorted(line.split()[:2] for line in lines) == [["DOWN", p] for p in "abc"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
@pytest.mark.parametrize("scheme", ["mailtos", "mailto"])
def test_mailto_with_an_ip_host_port_and_login_sends_down_then_up(
    tmp_path: Path, switch: Switch, ca: trustme.CA, scheme: str
) -> None:
    """The documented form: the login in the userinfo, from= and to= in the query
    (``?user=...&pass=...`` without ``from=`` makes Apprise build the sender from the
    user and the IP host, ``u@127.0.0.1``, which it refuses). ``mailtos://`` is
    STARTTLS (the password never crosses in clear; the server's certificate is checked
    against the test CA through SSL_CERT_FILE); ``mailto://`` is a relay on this host."""
    password = "s3cret-smtp-pw"
    tls = None
    env = {"SMTP_PASSWORD": password}
    if scheme == "mailtos":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(tls)
        pem = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        env["SSL_CERT_FILE"] = str(pem)
    with smtp_server(auth=True, tls=tls) as (port, box):
        mailto = (
            f"{scheme}://probe:${{SMTP_PASSWORD}}@127.0.0.1:{port}"
            "?from=probe@example.invalid&to=ops@example.invalid"
        )
        cfg = config(
            tmp_path,
            f"""
settings: {{location: eu-1, notify: ["{mailto}"]}}
probes:
  - {{name: home, url: "{switch.url}"}}
  - {{name: api, url: "{switch.url}api"}}
""",
        )
        runs = []
        for status in (503, 503, 200):
            switch.status = status
            runs.append(run(cfg, tmp_path, env=env))
    assert [r.returncode for r in runs] == [1, 1, 0]
    assert all(r.stderr == "" for r in runs), [r.stderr for r in runs]
    assert [m["Subject"] for m in box.mails] == ["synthprobe eu-1: 2 down", "synthprobe eu-1: 2 up"]
    down, up = (sorted(line.split()[:2] for line in body_lines(m)) for m in box.mails)
    assert down == [["DOWN", "api"], ["DOWN", "home"]]
    assert up == [["UP", "api"], ["UP", "home"]]
    assert {login for _, login, _ in box.logins} == {b"probe"}
    assert {pw for _, _, pw in box.logins} == {password.encode()}
    assert all(password not in r.stdout + r.stderr for r in runs)


# 3. probe validate asks Apprise


@pytest.mark.slow
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            "nosuchscheme://host/x?pass=pw-SECRET9",
            "no Apprise service has the scheme nosuchscheme://",
            id="unknown-scheme",
        ),
        pytest.param(
            "mailto://127.0.0.1:2525?user=u&pass=pw-SECRET9&to=ops@example.invalid",
            "Invalid ~From~ email specified",
            id="mailto-ip-host-without-from",
        ),
        pytest.param("json://@", "Unparseable JSON URL json://...", id="json-without-host"),
        pytest.param(
            "slack://pw-SECRET9",
            # Apprise echoes the token it refused: masked, as its privacy rendering would
            "An invalid Slack (first) Token (***) was specified",
            id="slack-short",
        ),
    ],
)
def test_validate_reports_apprises_reason_with_file_line_and_key(
    tmp_path: Path, url: str, reason: str
) -> None:
    cfg = config(
        tmp_path,
        f"""settings:
  notify:
    - json://127.0.0.1:9/hook
probes:
  - name: a
    url: http://127.0.0.1:9/
    alert:
      notify: ["{url}"]
""",
    )
    done = run_probe("validate", str(cfg))
    assert done.returncode == 2
    assert "probes.yaml:8: probes[0].alert.notify[0]: Apprise cannot use" in done.stderr
    assert reason in done.stderr
    assert "pw-SECRET9" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # imports Apprise's plugins in a child: 1.8 s seen on CI
def test_validate_accepts_urls_apprise_can_use(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        """settings:
  notify:
    - json://127.0.0.1:9/hook
    - mailto://probe:pw@127.0.0.1:2525?from=probe@example.invalid&to=ops@example.invalid
    - ntfy://127.0.0.1:9/topic
probes:
  - {name: a, url: "http://127.0.0.1:9/"}
""",
    )
    done = run_probe("validate", str(cfg))
    assert done.returncode == 0, done.stderr


# 5. an outage still going on reaches a target configured later, once


@pytest.mark.parametrize("change", ["url-fixed", "target-added"])
@pytest.mark.slow
def test_an_outage_reaches_a_target_configured_later_once(
    tmp_path: Path, switch: Switch, change: str
) -> None:
    first, later = Receiver(), Receiver()
    try:
        with dead_port() as dead:
            broken = f"json://127.0.0.1:{dead}/hook"
            before = [broken] if change == "url-fixed" else [first.url]
            after = [later.url] if change == "url-fixed" else [first.url, later.url]

            def cfg(urls: list[str]) -> Path:
                notify = ", ".join(f'"{u}"' for u in urls)
                return config(
                    tmp_path,
                    f"settings: {{location: eu-1, notify: [{notify}]}}\n"
                    f'probes:\n  - {{name: home, url: "{switch.url}"}}\n',
                )

            switch.status = 503
            down = run(cfg(before), tmp_path)
            assert down.stdout.startswith("DOWN home"), down.stdout
            fixed = run(cfg(after), tmp_path)
            again = run(cfg(after), tmp_path)
            switch.status = 200
            up = run(cfg(after), tmp_path)
    finally:
        first.close()
        later.close()
    if change == "url-fixed":
        assert "did not accept 1 events" in down.stderr
        assert "dropped 1 undelivered events" in fixed.stderr
    else:
        assert down.stderr == "" and fixed.stderr == ""
    # the DOWN is no new event: no line to cron, no "event" in the JSON line
    assert fixed.stdout == "" and again.stdout == "" and up.stdout.startswith("UP home")
    events = [r.get("event") for r in results(tmp_path / "r.jsonl")]
    assert events == ["down", None, None, "up"]
    got = [m["message"].split()[:2] for m in later.messages]
    assert got == [["DOWN", "home"], ["UP", "home"]]  # once, then the UP
    assert "since" in later.messages[0]["message"]
    if change == "target-added":
        assert [m["message"].split()[:2] for m in first.messages] == got


# 7. overlapping runs: each event in one JSON line in total


@pytest.mark.slow
def test_four_overlapping_runs_write_the_down_event_in_one_line(
    tmp_path: Path, receiver: Receiver
) -> None:
    failing = Switch(barrier=4)  # no run is answered before all four asked
    failing.status = 503
    try:
        cfg = config(
            tmp_path,
            f"""
settings: {{location: eu-1, notify: ["{receiver.url}"]}}
probes:
  - {{name: feed, url: "{failing.url}", timeout: 40s, retries: 0}}
""",
        )
        out = str(tmp_path / "r.jsonl")
        runs = [
            subprocess.Popen(
                probe_cmd("run", str(cfg), "-o", out, "--format", "changes"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [r.communicate(timeout=90) for r in runs]
    finally:
        failing.close()
    assert [r.returncode for r in runs] == [1, 1, 1, 1], [e for _, e in outputs]
    assert all("Traceback" not in err for _, err in outputs)
    lines = results(tmp_path / "r.jsonl")
    assert len(lines) == 4 and {line["state"] for line in lines} == {"down"}
    assert [line.get("event") for line in lines].count("down") == 1
    assert sum(1 for line in lines if "event" in line) == 1
    # the run whose line carries it is the one that printed it, and sent it
    assert sum(out.count("DOWN feed") for out, _ in outputs) == 1
    assert len(receiver.messages) == 1


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.mark.slow
def test_each_line_is_written_as_its_probe_ends_events_included(
    tmp_path: Path, switch: Switch, receiver: Receiver
) -> None:
    """Deciding an event under the lock does not hold a line back: the DOWN line and
    the healthy one are in the file while a slow probe of the same run is still waiting."""
    slow = Switch()
    slow.gate = threading.Event()
    try:
        with dead_port() as dead:
            cfg = config(
                tmp_path,
                f"""
settings: {{location: eu-1, notify: ["{receiver.url}"]}}
probes:
  - {{name: slow, url: "{slow.url}", timeout: 60s}}
  - {{name: down, url: "http://127.0.0.1:{dead}/"}}
  - {{name: fine, url: "{switch.url}"}}
""",
            )
            out = tmp_path / "r.jsonl"
            proc = subprocess.Popen(
                probe_cmd("run", str(cfg), "-o", str(out), "--format", "quiet"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                early: list[dict[str, Any]] = []
                for _ in range(600):  # up to 30 s
                    if out.exists() and len(early := results(out)) >= 2:
                        break
                    time.sleep(0.05)
                still_running = proc.poll() is None
            finally:
                slow.gate.set()
            _, err = proc.communicate(timeout=60)
    finally:
        slow.close()
    assert still_running
    assert sorted(r["probe"] for r in early) == ["down", "fine"]
    by_name = {r["probe"]: r for r in early}
    assert by_name["down"]["event"] == "down" and "event" not in by_name["fine"]
    assert proc.returncode == 1 and "Traceback" not in err
    assert [r["probe"] for r in results(out)][2] == "slow"


# 8. JUnit without a response; the nightly report under cron


def test_junit_says_dash_when_no_response_came(tmp_path: Path) -> None:
    with dead_port() as dead:
        cfg = config(tmp_path, f'probes:\n  - {{name: a, url: "http://127.0.0.1:{dead}/"}}\n')
        junit = tmp_path / "junit.xml"
        done = run_probe("run", str(cfg), "-o", os.devnull, "--junit", str(junit))
    assert done.returncode == 1
    text = junit.read_text()
    assert "status: -\n" in text and "None" not in text


@pytest.mark.slow
def test_the_nightly_report_is_silent_unless_a_person_watches(
    tmp_path: Path, switch: Switch
) -> None:
    cfg = config(tmp_path, f'probes:\n  - {{name: a, url: "{switch.url}"}}\n')
    done = run_probe("run", str(cfg), "-o", str(tmp_path / "r.jsonl"), "--format", "quiet")
    assert done.returncode == 0, done.stderr
    page = tmp_path / "index.html"
    cron = run_probe("report", str(tmp_path / "r.jsonl"), "--html", str(page), "--format", "json")
    assert cron.returncode == 0 and cron.stderr == ""
    assert json.loads(cron.stdout) and page.stat().st_size > 0
    # at a terminal, the person is told where the page went
    main, side = pty.openpty()
    try:
        with os.fdopen(side, "wb") as stderr:
            tty = subprocess.run(
                probe_cmd("report", str(tmp_path / "r.jsonl"), "--html", str(page)),
                stdout=subprocess.PIPE,
                stderr=stderr,
                timeout=60,
            )
        said = b""
        with contextlib.suppress(OSError):  # EIO once the child's side is closed
            while chunk := os.read(main, 4096):
                said += chunk
    finally:
        os.close(main)
    assert tty.returncode == 0
    assert f"status page written to {page}" in said.decode()


# 6. docs/cron.md as written: where cron gets secrets, and how many mails an outage makes

CRON_MD = Path(__file__).resolve().parent.parent / "docs" / "cron.md"


@pytest.mark.slow
def test_cron_md_secrets_recipe_works_in_crons_empty_environment(tmp_path: Path) -> None:
    text = CRON_MD.read_text()
    crontab = text.split("```cron\n", 1)[1].split("```", 1)[0]
    job = next(line for line in crontab.splitlines() if "probe run" in line)
    wrapper = job[job.index("set -a") : job.index("cd /opt/synthprobe")]
    assert wrapper == "set -a; . /etc/synthprobe/env; set +a; "
    assert "install -m 0600" in text
    notify = next(b for b in text.split("```yaml\n")[1:] if "mailtos://" in b).split("```")[0]
    cfg = config(tmp_path, notify + 'probes:\n  - {name: a, url: "http://127.0.0.1:9/"}\n')
    env_file = tmp_path / "env"
    env_file.write_text("SMTP_PASSWORD='s3cret-pw'\n")
    env_file.chmod(0o600)
    cron_env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin"}  # cron's, nearly

    def job_line(env_path: Path) -> subprocess.CompletedProcess[str]:
        line = wrapper.replace("/etc/synthprobe/env", str(env_path))
        command = " ".join(shlex.quote(a) for a in probe_cmd("validate", str(cfg)))
        return subprocess.run(
            ["/bin/sh", "-c", line + command],
            capture_output=True,
            text=True,
            env=cron_env,
            timeout=60,
        )

    done = job_line(env_file)
    assert done.returncode == 0, done.stderr
    env_file.write_text("")  # what cron has without the file: the variable unset
    done = job_line(env_file)
    assert done.returncode == 2 and "SMTP_PASSWORD" in done.stderr


def test_cron_md_counts_the_mails_of_a_two_hour_outage_right() -> None:
    """120 failed runs a minute apart (each started a little late or early, as cron's
    are), then a passing one, with cron.md's own `alert` block."""
    from synthprobe.alerts import Entry, apply
    from synthprobe.config import load_sources
    from synthprobe.units import format_utc

    from .results import make_result

    text = CRON_MD.read_text()
    assert "is **three** mails" in text
    block = next(b for b in text.split("```yaml\n")[1:] if "remind_every" in b).split("```")[0]
    loaded = load_sources(
        [
            (
                "cron.md",
                (block + 'probes:\n  - {name: feed-home, url: "http://x.invalid/"}\n').encode(),
            )
        ],
        env={},
    )
    rule = loaded.probes[0].alert
    entry, events = Entry(), []
    start = 1_795_000_000.0
    for minute in range(121):
        jitter = (0.4, -0.3, 0.1)[minute % 3]
        ok = minute == 120
        r = make_result(ok=ok, ts=format_utc(start + minute * 60 + jitter))
        entry, event = apply(entry, r, rule)
        if event is not None:
            events.append(event.kind.value)
    assert events == ["down", "reminder", "up"]
