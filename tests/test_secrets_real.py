"""A secret in a notify URL's path, ``json://HOST/hook/${HOOK_TOKEN}``, reaches its
target and nothing else: Apprise's privacy rendering hides the parts it knows for
secrets (``pass=``, a token), not a path part of json://, so every line about a target
goes through our redactor. The real ``probe`` command against a real receiver on
127.0.0.1 that refuses delivery; then every byte the runs printed or wrote is searched."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from synthprobe.redact import Redactor

from .commands import run_probe
from .probing import write_config

SECRET = "hk-7Qz9xW2mRt4"
"""HOOK_TOKEN's value: only the target may see it."""


class Refusing:
    """A webhook on 127.0.0.1 that answers 500 to every POST, and records its path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                paths.append(self.path)
                self.send_response(500)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def target(kind: str) -> Iterator[tuple[int, Refusing | None]]:
    if kind == "answers-500":
        receiver = Refusing()
        try:
            yield receiver.port, receiver
        finally:
            receiver.close()
    else:  # bound, not listening: every connection is refused
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            yield int(s.getsockname()[1]), None


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["answers-500", "closed-port"])
def test_a_secret_in_a_notify_urls_path_is_in_no_output(
    tmp_path: Path, refused_url: str, kind: str
) -> None:
    env = {"HOOK_TOKEN": SECRET}
    with target(kind) as (port, receiver):
        hook = f"json://127.0.0.1:{port}/hook/${{HOOK_TOKEN}}"
        cfg = write_config(
            tmp_path,
            {
                "settings": {"location": "eu-1", "notify": [hook]},
                "probes": [
                    {"name": "a", "url": f"{refused_url}/a"},
                    {"name": "b", "url": f"{refused_url}/b", "alert": {"notify": [hook]}},
                ],
            },
        )
        out = str(tmp_path / "r.jsonl")
        runs = [
            # the DOWNs raised, refused: they stay pending
            run_probe("run", str(cfg), "-o", out, "--format", "changes", env=env),
            # sent again, late, refused again
            run_probe("run", str(cfg), "-o", out, "--format", "quiet", env=env),
            # JSON lines on stdout, the table on stderr, a state file of its own
            run_probe("run", str(cfg), "-o", "-", "--state", str(tmp_path / "s.json"), env=env),
        ]
        others = [
            run_probe("list", str(cfg), "--format", "json", env=env),
            run_probe("list", str(cfg), env=env),
            run_probe("validate", str(cfg), env=env),
        ]
    for done in runs:
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        warned = [line for line in done.stderr.splitlines() if "did not accept" in line]
        # one message per target, and the target named, its secret masked
        assert len(warned) == 1, done.stderr
        assert f"json://127.0.0.1:{port}/hook/***?" in warned[0], warned
    assert all(done.returncode == 0 for done in others), [d.stderr for d in others]
    listed = json.loads(others[0].stdout)
    assert listed[1]["alert"]["notify"] == [f"json://127.0.0.1:{port}/hook/***"]
    if receiver is not None:
        # the secret did go where it belongs: to the target, in each run's attempt
        assert receiver.paths == [f"/hook/{SECRET}"] * len(runs)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"r.jsonl", "r.state.json", "s.json"} <= names, names
    blob = b"\n".join(p.read_bytes() for p in written)
    for done in runs + others:
        blob += done.stdout.encode() + done.stderr.encode()
    for form in {SECRET, quote(SECRET, safe="")}:
        assert form.encode() not in blob, form


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mailto://probe:****@127.0.0.1:25", "mailto://probe:****@127.0.0.1:25"),
        ("mailto://probe:pw@127.0.0.1:25", "mailto://***@127.0.0.1:25"),
        ("ntfy://t...x@127.0.0.1/topic", "ntfy://***@127.0.0.1/topic"),
        (f"json://{SECRET}:****@127.0.0.1/", "json://***:****@127.0.0.1/"),
        (f"json://127.0.0.1/hook/{SECRET}?method=POST", "json://127.0.0.1/hook/***?method=POST"),
    ],
    ids=[
        "apprises-masked-password-keeps-its-login",
        "a-clear-password-masks-the-userinfo",
        "apprises-first-and-last-character-are-masked",
        "a-secret-login-is-masked-all-the-same",
        "a-secret-in-a-path",
    ],
)
def test_the_redactor_over_apprises_renderings(text: str, expected: str) -> None:
    assert Redactor({SECRET}).text(text) == expected
