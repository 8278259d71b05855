"""The floor under synthprobe's CPU per probe: plain httpx, nothing of ours.

    python bench/httpx_floor.py

1000 GETs at 100 in flight against bench/delay_server.py, one ``httpx.AsyncClient``
without keep-alive (a prober opens a fresh connection per probe, as synthprobe and
blackbox_exporter do), on asyncio and on uvloop. CPU (user+sys) of this process per
request, beside one `probe run` of the same URLs. If the bare client costs more than a
target, no work of ours can bring the prober under it while httpx stays the client.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
from pathlib import Path

import httpx
import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fidelity import bench_probe, delay_server  # noqa: E402

N, IN_FLIGHT = 1000, 100


async def fetch_all(urls: list[str]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(url: str) -> None:
            async with gate:
                response = await client.get(url)
                assert response.status_code == 200

        await asyncio.gather(*(one(u) for u in urls))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    with delay_server() as port, tempfile.TemporaryDirectory() as tmp:
        urls = [f"http://127.0.0.1:{port}/item?i={i}" for i in range(N)]
        asyncio.run(fetch_all(urls[:50]))  # httpx's own first-use costs, not measured
        print(f"{N} GETs, {IN_FLIGHT} in flight, a fresh connection each; CPU ms per request")
        for name, run in (("asyncio", asyncio.run), ("uvloop", uvloop.run)):
            before = cpu_s()
            run(fetch_all(urls))
            print(f"  bare httpx on {name:<8} {(cpu_s() - before) * 1000 / N:6.2f}")
        row = bench_probe(urls, IN_FLIGHT, Path(tmp))
        print(f"  probe run (start-up too) {row['cpu_ms_per_probe']:6.2f}")


if __name__ == "__main__":
    main()
