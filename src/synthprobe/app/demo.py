"""``probe demo``: the embedded platform, probed with the bundled config or served."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
from typing import TYPE_CHECKING

from synthprobe.app import EXIT_OK, Streams
from synthprobe.app.run import RunOptions, run_command
from synthprobe.errors import UsageError

if TYPE_CHECKING:
    from synthprobe.demo.server import DemoPlatform


def demo_command(opts: RunOptions, io: Streams, serve: bool, port: int) -> int:
    """``probe demo``: start the demo platform; probe it with the bundled config, or serve."""
    from importlib.resources import files

    from synthprobe.config import load_sources
    from synthprobe.demo import DemoPlatform, PlatformThread, refused_port

    if serve:
        # the extras on the next three ports, so probes.example.yaml can name them
        tls_port, tcp_port, grpc_port = (port + 1, port + 2, port + 3) if port else (0, 0, 0)
        platform = DemoPlatform(
            port=port, extras=True, tls_port=tls_port, tcp_port=tcp_port, grpc_port=grpc_port
        )
        return asyncio.run(_serve_demo(platform, io))
    raw = files("synthprobe").joinpath("demo.yaml").read_bytes()
    sock, refused = refused_port()
    # a UDP port that takes every datagram and answers none: QUIC blocked by a firewall
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with PlatformThread(DemoPlatform(extras=True)) as platform:
            loaded = load_sources(
                [("demo.yaml (bundled)", raw)],
                variables={
                    "DEMO_URL": platform.base_url,
                    "DEMO_WS": platform.base_url.replace("http://", "ws://"),
                    "DEMO_REFUSED": f"http://127.0.0.1:{refused}",
                    "DEMO_TLS_PORT": str(platform.tls_port),
                    "DEMO_TCP_PORT": str(platform.tcp_port),
                    "DEMO_GRPC_PORT": str(platform.grpc_port),
                    "DEMO_UDP_SILENT": str(silent.getsockname()[1]),
                },
            )
            io.err.print(
                f"demo platform on {platform.base_url}; probing it with the bundled config",
                highlight=False,
            )
            demo_opts = dataclasses.replace(opts, output=opts.output or os.devnull)
            return run_command(demo_opts, io, loaded)
    finally:
        sock.close()
        silent.close()


def example_env(platform: DemoPlatform) -> str:
    """The variables probes.example.yaml reads, set for this platform's ports: on a port
    other than 8787, BASE_URL alone would leave the WebSocket, TLS and TCP probes on
    the default ports."""
    base = platform.base_url
    tls = platform.tls_url.split("://", 1)[1]
    cache = platform.tcp_url.split("://", 1)[1]
    ws = "ws://" + base.split("://", 1)[1]
    return f"BASE_URL={base} WS_URL={ws} TLS_HOST={tls} CACHE_HOST={cache} INGEST_HOST={tls}"


async def _serve_demo(platform: DemoPlatform, io: Streams) -> int:
    try:
        await platform.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{platform.port} (or the three ports after it): "
            f"{exc.strerror or exc}",
            hint="choose another port with --port",
        ) from None
    io.err.print(
        f"demo platform on [bold]{platform.base_url}[/] (Ctrl-C stops it)\n"
        f"  TLS, HTTP/2 or 1.1: {platform.tls_url} (throwaway certificate)\n"
        f"  a cache (PING):     {platform.tcp_url}\n"
        f"  gRPC health:        {platform.grpc_url} (feed.v1.Ranker up, chat.v1.Messages down)\n"
        f"  try: {example_env(platform)} probe run probes.example.yaml\n"
        f"  break a part: curl -X PUT '{platform.base_url}/_demo/faults/feed?mode=503'\n"
        f"  mend it:      curl -X DELETE {platform.base_url}/_demo/faults/feed",
        highlight=False,
        soft_wrap=True,  # commands to copy: never broken across lines
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await platform.close()
    return EXIT_OK
