"""HTTP/3 beside HTTP/2 on the same server, in one run: latency error and CPU per probe.

    python bench/http3.py [--probes 300] [--concurrency 20] [--delay-ms 50]

Debian's caddy (the same process, the same port number: TCP for HTTP/2, UDP for HTTP/3)
reverse-proxies every request to bench/delay_server.py, which answers after DELAY_MS.
The real `probe run` CLI fetches the same URL PROBES times with each http_version, one
after the other; the certificate comes from a throwaway CA (trustme) trusted through
SSL_CERT_FILE.

- latency error: a probe's ``ttfb`` minus the delay (what the prober and caddy add of
  their own; caddy's share is the same for both versions), median and p95;
- connect: the TCP+TLS handshakes (HTTP/2) against the QUIC handshake (HTTP/3);
- CPU per probe: the `probe run` process's user + system time over its probes (start-up
  included, the same for both).

Not part of `make test`: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.commands import probe_cmd  # noqa: E402
from tests.realprograms import CADDY, caddy_server, free_port, listening, stop, wait_until  # noqa: E402


@contextmanager
def delay_server(delay_ms: float) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "delay_server.py"), str(port), str(delay_ms)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(port), 10, "the delay server to listen")
        yield port
    finally:
        stop(proc)  # type: ignore[arg-type]


def run(
    version: str, url: str, probes: int, concurrency: int, ca_file: str, tmp: Path
) -> dict[str, float]:
    config = tmp / f"h{version}.yaml"
    entries = [
        {"name": f"p{i}", "url": url, "http_version": version, "timeout": "10s", "retries": 0}
        for i in range(probes)
    ]
    config.write_text(json.dumps({"probes": entries}))
    out = tmp / f"h{version}.jsonl"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        probe_cmd("run", str(config), "-o", str(out), "--format", "quiet", "-c", str(concurrency)),
        env={**os.environ, "SSL_CERT_FILE": ca_file},
        stdout=subprocess.DEVNULL,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ok = [r for r in lines if r["ok"]]
    spoken = {r["details"].get("http_version") for r in ok}
    return {
        "ok": len(ok),
        "n": len(lines),
        "spoken": ", ".join(sorted(s for s in spoken if s)),
        "ttfb": [r["timings_ms"]["ttfb"] for r in ok],
        # the handshakes: TCP and TLS over TCP, QUIC's one (TLS inside) over UDP
        "connect": [r["timings_ms"]["connect"] + (r["timings_ms"]["tls"] or 0) for r in ok],
        "cpu_ms": cpu * 1000 / max(1, len(lines)),
    }  # type: ignore[dict-item]


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    if CADDY is None:
        print("bench/http3.py: caddy is not installed (make debian-bench-deps)", file=sys.stderr)
        return 0
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    with tempfile.TemporaryDirectory() as tmp_name, delay_server(args.delay_ms) as backend:
        tmp = Path(tmp_name)
        ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
        extra = f"reverse_proxy /delay 127.0.0.1:{backend}"
        with caddy_server(chain, cert.private_key_pem.bytes(), extra=extra) as caddy:
            url = f"https://127.0.0.1:{caddy.port}/delay"
            time.sleep(0.2)
            rows = {
                v: run(v, url, args.probes, args.concurrency, str(tmp / "ca.pem"), tmp)
                for v in ("2", "3")
            }
    d = args.delay_ms
    print(
        f"HTTP/3 against HTTP/2: {args.probes} probes each, {args.concurrency} in flight, "
        f"caddy reverse-proxying to a server that answers after {d:g} ms"
    )
    print(f"{'':28}{'HTTP/2':>14}{'HTTP/3':>14}")
    table = [
        ("spoken", lambda r: str(r["spoken"])),
        ("ok / probes", lambda r: f"{r['ok']}/{r['n']}"),
        ("latency error p50 (ms)", lambda r: f"{_p(r['ttfb'], 0.5) - d:.2f}"),
        ("latency error p95 (ms)", lambda r: f"{_p(r['ttfb'], 0.95) - d:.2f}"),
        ("handshakes p50 (ms)", lambda r: f"{_p(r['connect'], 0.5):.2f}"),
        ("handshakes p95 (ms)", lambda r: f"{_p(r['connect'], 0.95):.2f}"),
        ("CPU per probe (ms)", lambda r: f"{r['cpu_ms']:.2f}"),
    ]
    for label, cell in table:
        print(f"{label:28}{cell(rows['2']):>14}{cell(rows['3']):>14}")
    if rows["2"]["ttfb"] and rows["3"]["ttfb"]:
        spread = statistics.pstdev(rows["3"]["ttfb"])
        print(f"HTTP/3 ttfb standard deviation: {spread:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
