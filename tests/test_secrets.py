"""Secrets never leave: run every command and format with secrets in the URL, query,
userinfo and headers, then grep everything written for them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from synthprobe.demo import DemoPlatform

from .commands import probe_cmd
from .probing import write_config

SECRET = "s3cr3t-T0ken/with+odd=chars"
USERPASS = "hunter2-password"


@pytest.mark.slow
def test_secrets_masked_in_every_output(tmp_path: Path, platform: DemoPlatform) -> None:
    base = platform.base_url
    host = base.split("://")[1]
    config = write_config(
        tmp_path,
        f"""
probes:
  - name: query-token
    url: "{base}/fault/status/503?token=${{SECRET}}&limit=1"
    headers:
      Authorization: "Bearer ${{SECRET}}"
      Cookie: "session=${{SECRET}}"
      X-Api-Key: "${{SECRET}}"
      X-Trace: "trace-${{SECRET}}"
  - name: userinfo
    url: "http://probe:${{USERPASS}}@{host}/fault/reset"
  - name: loop-echoes-url
    url: "{base}/fault/redirect-loop?sig=${{SECRET}}"
  - name: upload-verify
    kind: upload
    url: "{base}/v1/media?key=${{SECRET}}"
    upload: {{size: 1KiB, verify_url: "{base}/v1/media/{{nope}}?auth=${{SECRET}}"}}
""",
        "secret.yaml",
    )
    env = {**os.environ, "SECRET": SECRET, "USERPASS": USERPASS, "COLUMNS": "250"}
    outputs: list[str] = []

    def run(*args: str) -> None:
        result = subprocess.run(
            probe_cmd(*args),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode in (0, 1), result.stderr
        outputs.extend([result.stdout, result.stderr])

    jsonl, junit, prom, html = (tmp_path / n for n in ("r.jsonl", "j.xml", "m.prom", "s.html"))
    run("run", str(config), "-o", str(jsonl), "--junit", str(junit), "--prom", str(prom))
    run("run", str(config), "-o", "-", "--format", "quiet")
    run("run", str(config), "-o", str(jsonl), "--format", "json")
    run("list", str(config))
    run("list", str(config), "--format", "json")
    run("validate", str(config))
    run("report", str(jsonl), "--html", str(html), "--format", "json")
    files = [p.read_text() for p in (jsonl, junit, prom, html)]
    everything = "\n".join(outputs + files)
    assert "query-token" in everything and "loop-echoes-url" in everything  # it did run
    for needle in (SECRET, quote(SECRET, safe=""), quote(SECRET), USERPASS):
        assert needle not in everything, f"{needle!r} leaked"
    assert "token=***" in everything and "http://***@" in everything


def test_secret_in_config_error_message_is_masked(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, "probes:\n  - {name: a, url: 'ftp://${SECRET}@127.0.0.1/'}\n", "bad.yaml"
    )
    result = subprocess.run(
        probe_cmd("validate", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SECRET": SECRET},
    )
    assert result.returncode == 2
    assert SECRET not in result.stderr and USERPASS not in result.stderr
    assert "bad URL" in result.stderr
