"""`probe demo` shows every failure class; `probe demo --serve` runs the example config."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from .commands import probe_cmd

ROOT = Path(__file__).resolve().parent.parent


def test_demo_shows_every_failure_class(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = subprocess.run(
        probe_cmd("demo", "-o", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["failure"] for r in records} == {None, "dns", "network", "server", "timeout"}
    kinds = {"feed", "upload", "live", "messaging", "tcp"}
    assert {r["kind"] for r in records} == kinds
    assert {r["kind"] for r in records if r["ok"]} == kinds
    assert any(r["ok"] for r in records)
    for needle in (
        "dns.nxdomain",
        "network.refused",
        "network.reset",
        "timeout.read",
        "server.status",
        "server.assertion",
        "server.live_stalled",
        "server.live_ended",
        "server.reply",
        "✓ up",
    ):
        assert needle in result.stdout, needle
    assert "Traceback" not in result.stderr


def test_example_config_passes_against_demo_serve(tmp_path: Path) -> None:
    server = subprocess.Popen(
        probe_cmd("demo", "--serve", "--port", "0"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()  # "demo platform on http://127.0.0.1:PORT ..."
        base = line.split(" on ", 1)[1].split()[0]
        assert base.startswith("http://127.0.0.1:")
        tls = re.findall(r"https://\S+", server.stderr.readline())[0]
        tcp = re.findall(r"tcp://\S+", server.stderr.readline())[0]
        hosts = {"TLS_HOST": tls.split("://")[1], "INGEST_HOST": tls.split("://")[1]}
        hosts["CACHE_HOST"] = tcp.split("://")[1]
        result = subprocess.run(
            probe_cmd("run", str(ROOT / "probes.example.yaml"), "-o", str(tmp_path / "r.jsonl")),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BASE_URL": base, "WS_URL": base.replace("http", "ws"), **hosts},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        records = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
        kinds = {"feed", "upload", "http", "live", "messaging", "tcp"}
        assert {r["kind"] for r in records} == kinds
        by_name = {r["probe"]: r for r in records}
        assert by_name["feed-h2"]["details"]["http_version"] == "HTTP/2"
        assert by_name["cache-ping"]["details"]["reply"] == "+PONG\r\n"
        # public_vars: not masked
        assert all("***" not in r["url"] for r in records)
        assert by_name["feed-home"]["url"].startswith(base)
    finally:
        server.terminate()
        server.communicate(timeout=10)  # also closes the stderr pipe
    assert server.returncode == 0  # SIGTERM is a clean stop for --serve
