"""Worker processes, one event loop each: for runs larger than one core can serve.

``probe run --workers N`` forks N processes once the config is loaded. Worker i runs
probes i, i+N, i+2N... with its own runner (its share of the concurrency) and sends
each result back through a pipe the moment it is final. The parent stays the only
writer: JSON lines, state, alerts and reports are made exactly as with one process,
and a result is recorded once, whole, or not at all.

SIGINT or SIGTERM to the parent is passed on as SIGTERM; each worker stops its probes
and exits, and what they had already sent is recorded. A worker that dies (killed, a
bug) is an error of the run, never a silent gap. Fork is used (POSIX): the workers
inherit the loaded config and need no import of their own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from synthprobe.errors import SynthprobeError, UsageError
from synthprobe.models import ProbeResult, ProbeSpec

Child = Callable[[Sequence[ProbeSpec], int, Callable[[ProbeResult], None]], None]
"""Runs a shard in a worker: (specs, concurrency, send each result)."""
DRAIN_AFTER_STOP = 10.0
"""Seconds to wait for stopped workers' last results and their exit."""


class WorkerFailed(SynthprobeError):
    exit_code = 1


def shards(specs: Sequence[ProbeSpec], workers: int) -> list[list[ProbeSpec]]:
    """Every ``workers``-th probe to each worker (probes of one kind or host spread out);
    no empty shard."""
    return [list(specs[i::workers]) for i in range(min(workers, len(specs)))]


def _in_worker(child: Child, shard: list[ProbeSpec], concurrency: int, conn: Connection) -> None:
    # the parent decides when to stop: a terminal's Ctrl-C reaches the whole process
    # group, and the parent passes it on as SIGTERM. The parent's event loop wakes on
    # signals through a file descriptor we share after fork: let go of it first.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        child(shard, concurrency, conn.send)
    finally:
        conn.close()


async def run_in_workers(
    specs: Sequence[ProbeSpec],
    workers: int,
    concurrency: int,
    child: Child,
    on_result: Callable[[ProbeResult], None],
) -> None:
    """Run ``specs`` in ``workers`` processes; ``on_result`` (in this process) for each
    result as it arrives. Cancelling stops the workers and keeps what they sent."""
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # Windows: no fork
        raise UsageError(
            "--workers needs fork(), which this platform does not have",
            hint="run with --workers 1 (the default)",
        ) from None
    parts = shards(specs, workers)
    share = max(1, -(-concurrency // len(parts)))  # ceil: N workers, c in flight in all
    running: list[tuple[BaseProcess, Connection]] = []
    for shard in parts:
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=_in_worker, args=(child, shard, share, writer), name="synthprobe-worker"
        )
        process.start()
        writer.close()  # ours: EOF on the reader once the worker's copy closes
        running.append((process, reader))
    loop = asyncio.get_running_loop()
    drains = [asyncio.ensure_future(_drain(loop, reader, on_result)) for _, reader in running]
    try:
        await asyncio.gather(*drains)
    except asyncio.CancelledError:
        _stop(running)
        # what the workers finished before they stopped is still recorded
        _done, pending = await asyncio.wait(drains, timeout=DRAIN_AFTER_STOP)
        for task in pending:
            task.cancel()
        raise
    except BaseException:
        _stop(running)  # our side failed (an output that cannot be written): stop theirs
        for task in drains:
            task.cancel()
        raise
    finally:
        for worker, reader in running:
            await loop.run_in_executor(None, worker.join, DRAIN_AFTER_STOP)
            if worker.exitcode is None:
                worker.kill()
                worker.join()
            reader.close()
    failed = [p.exitcode for p, _ in running if p.exitcode != 0]
    if failed:
        raise WorkerFailed(
            f"{len(failed)} of {len(running)} worker processes failed (exit codes {failed}); "
            "the results they sent are recorded"
        )


def _stop(running: list[tuple[BaseProcess, Connection]]) -> None:
    for process, _ in running:
        if process.pid is not None and process.exitcode is None:
            os.kill(process.pid, signal.SIGTERM)


async def _drain(
    loop: asyncio.AbstractEventLoop, reader: Connection, on_result: Callable[[ProbeResult], None]
) -> None:
    """Each result a worker sends, until it closes its end."""
    readable = asyncio.Event()
    fd = reader.fileno()
    loop.add_reader(fd, readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            # a message is written whole by the worker; take all that are there
            while reader.poll():
                try:
                    result = reader.recv()
                except EOFError:
                    return
                on_result(result)
    finally:
        loop.remove_reader(fd)
