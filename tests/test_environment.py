"""Environment: HTTP(S)_PROXY / NO_PROXY through a real proxy, and IPv4 / IPv6 choice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthprobe.demo import DemoPlatform, PlatformThread
from synthprobe.probers.base import Network

from .commands import probe_cmd
from .conftest import probe_once
from .probing import write_config


class Proxy:
    """A small forward proxy: absolute-form requests for http, CONNECT tunnels for https."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # Stopped: close what the loop holds, so nothing is left for the collector to warn about.
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_writer: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, version = head.split(b"\r\n", 1)[0].decode().split(" ")
            self.seen.append(f"{method} {target}")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:  # absolute form: http://host:port/path
                rest = target.split("://", 1)[1]
                hostport, _, path = rest.partition("/")
                host, _, port = hostport.partition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
                lines = head.split(b"\r\n")
                lines[0] = f"{method} /{path} {version}".encode()
                up_writer.write(b"\r\n".join(lines))
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            # a tunnel cut by the fixture's stop (its pipes cancelled) closes both ends
            # here: the upstream socket would otherwise be left for the collector
            writer.close()
            if up_writer is not None:
                up_writer.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError):
            dst.close()

    def __enter__(self) -> Proxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running


def test_http_through_proxy(platform: DemoPlatform, proxy: Proxy) -> None:
    result = probe_once(
        platform.base_url + "/v1/feed", network=Network(proxies={"http": proxy.url})
    )
    assert result.ok, result.error
    assert proxy.seen == [f"GET {platform.base_url}/v1/feed"]
    assert result.details["proxy"] == proxy.url
    assert result.timings_ms["dns"] is None  # the proxy resolves


def test_https_through_connect_tunnel(tls_platform: DemoPlatform, proxy: Proxy, ca: object) -> None:
    import ssl

    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)  # type: ignore[attr-defined]
    network = Network(trusted=ctx, proxies={"https": proxy.url})
    result = probe_once(f"https://localhost:{tls_platform.port}/v1/feed", network=network)
    assert result.ok, result.error
    assert proxy.seen == [f"CONNECT localhost:{tls_platform.port}"]
    assert result.timings_ms["tls"] is not None


def test_no_proxy_goes_direct(platform: DemoPlatform, proxy: Proxy) -> None:
    network = Network(proxies={"http": proxy.url, "no": "127.0.0.1,localhost"})
    result = probe_once(platform.base_url + "/v1/feed", network=network)
    assert result.ok and proxy.seen == []


def test_dead_proxy_is_refused_with_its_address(platform: DemoPlatform, refused_url: str) -> None:
    result = probe_once(
        platform.base_url + "/v1/feed", network=Network(proxies={"http": refused_url})
    )
    assert result.reason == "network.refused", result.error


def test_cli_honours_env_proxy_unless_told_not_to(
    tmp_path: Path, platform: DemoPlatform, proxy: Proxy
) -> None:
    config = write_config(
        tmp_path, f'probes:\n  - {{name: a, url: "{platform.base_url}/v1/feed"}}\n', "p.yaml"
    )
    env = {**os.environ, "HTTP_PROXY": proxy.url}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    for extra, expected in (([], 1), (["--ignore-env-proxy"], 1)):
        result = subprocess.run(
            probe_cmd("run", str(config), "-o", str(tmp_path / "r.jsonl"), *extra),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(proxy.seen) == expected  # the second run did not add to it


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def platform6() -> Iterator[DemoPlatform]:
    if not has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    with PlatformThread(DemoPlatform(host="::1")) as running:
        yield running


def test_ipv6_literal_records_remote_ip(platform6: DemoPlatform) -> None:
    result = probe_once(f"http://[::1]:{platform6.port}/v1/feed")
    assert result.ok, result.error
    assert result.details["remote_ip"] == "::1"


@pytest.mark.parametrize(
    ("ip_version", "reason", "remote"),
    [("auto", None, "127.0.0.1"), ("4", None, "127.0.0.1"), ("6", "network.refused", "::1")],
    ids=["auto-falls-back", "only-v4", "only-v6"],
)
def test_ip_version(
    platform: DemoPlatform, ip_version: str, reason: str | None, remote: str
) -> None:
    async def dual_stack(host: str, port: int) -> list[str]:
        return ["::1", "127.0.0.1"]  # v6 first, as getaddrinfo orders them; nothing on ::1

    result = probe_once(
        f"http://dual.example.invalid:{platform.port}/v1/feed",
        network=Network(resolver=dual_stack),
        ip_version=ip_version,
    )
    assert result.reason == reason, result.error
    assert result.details["remote_ip"] == remote


def test_ip_version_without_such_address(platform: DemoPlatform) -> None:
    result = probe_once(f"http://127.0.0.1:{platform.port}/v1/feed", ip_version="6")
    assert (result.reason, result.error) == ("dns.no_address", "127.0.0.1 has no IPv6 address")


def test_bad_ip_version_is_a_config_error() -> None:
    from synthprobe.config import load_sources
    from synthprobe.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_sources(
            [("t.yaml", b"probes:\n  - {name: a, url: 'http://127.0.0.1/', ip_version: 5}\n")],
            env={},
        )
    assert info.value.problems == [
        "t.yaml:2: probes[0].ip_version: expected 4, 6 or auto, got a number (5)"
    ]
    assert json.dumps(info.value.problems)
