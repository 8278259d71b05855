"""workers.py with real forked processes (the CLI tests drive it end to end)."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from synthprobe.models import ProbeResult, ProbeSpec
from synthprobe.workers import run_in_workers, shards

from .conftest import specs_from_yaml
from .results import make_result


def _specs(n: int) -> list[ProbeSpec]:
    probes = "".join(f'  - {{name: p{i}, url: "http://127.0.0.1:1/"}}\n' for i in range(n))
    return specs_from_yaml("probes:\n" + probes)


@pytest.mark.parametrize(("n", "workers", "sizes"), [(7, 3, [3, 2, 2]), (2, 5, [1, 1])])
def test_shards_cover_every_probe_once(n: int, workers: int, sizes: list[int]) -> None:
    parts = shards(_specs(n), workers)
    assert [len(p) for p in parts] == sizes
    assert sorted(s.name for part in parts for s in part) == sorted(s.name for s in _specs(n))


def test_when_our_side_fails_the_workers_are_told_to_stop(tmp_path: Path) -> None:
    # an output that cannot be written stops the run: the workers must get SIGTERM at
    # once, not run on until the join gives up and kills them
    marker = tmp_path / "stopped"

    def child(shard: Sequence[ProbeSpec], _share: int, send: Callable[..., None]) -> None:
        def stopped(_signum: int, _frame: object) -> None:
            marker.touch()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stopped)
        send(make_result(shard[0].name))
        time.sleep(30)  # bounded: a test that failed still ends

    def on_result(_result: ProbeResult) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(run_in_workers(_specs(2), 2, 2, child, on_result))
    assert marker.exists()
    assert multiprocessing.active_children() == []
