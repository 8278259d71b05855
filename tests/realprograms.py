"""Real programs from Debian packages, started on 127.0.0.1 for the tests: ffmpeg making
live HLS, nginx serving it (and TLS with and without HTTP/2), websocketd running an echo,
redis-server as a TCP service, tmux as a terminal. `make test` installs them."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
FFMPEG = shutil.which("ffmpeg")
WEBSOCKETD = shutil.which("websocketd")
TMUX = shutil.which("tmux")


def need(program: str | None, package: str) -> str:
    if program is None:
        pytest.skip(f"{package} is not installed (`make test` installs the Debian package as root)")
    return program


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {seconds}s waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within 5 s."""
    if proc.poll() is None:
        proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def segments_in(playlist: Path) -> int:
    try:
        return playlist.read_text().count("#EXTINF")
    except OSError:
        return 0


def ffmpeg_hls(out_dir: Path, seconds: float | None = None) -> subprocess.Popen[bytes]:
    """A live HLS stream of a test pattern: 1 s segments, 4 in the list, old ones deleted."""
    command = [
        need(FFMPEG, "ffmpeg"),
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x90:rate=10",
    ]
    if seconds is not None:
        command += ["-t", str(seconds)]
    command += [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "10",
        "-f",
        "hls",
        "-hls_time",
        "1",
        "-hls_list_size",
        "4",
        "-hls_flags",
        "delete_segments+program_date_time",
        str(out_dir / "index.m3u8"),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        add_header Cache-Control no-cache;
    }}
}}
"""


@dataclass
class HlsServer:
    base_url: str
    """nginx on 127.0.0.1 serving live/, ended/ and stalled/ streams made by ffmpeg."""


@contextlib.contextmanager
def hls_server() -> Iterator[HlsServer]:
    need(FFMPEG, "ffmpeg")
    nginx = need(NGINX, "nginx")
    # nginx workers run unprivileged: serve from a world-readable directory
    root = Path(tempfile.mkdtemp(prefix="synthprobe-hls-", dir="/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("live", "ended", "stalled", "conf"):
            (root / name).mkdir()
        for path in (root, *root.iterdir()):
            path.chmod(0o755)
        port = free_port()
        conf = root / "conf" / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=root / "conf", root=root, port=port))
        server = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(root / "conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(server)
        live = ffmpeg_hls(root / "live")
        stalled = ffmpeg_hls(root / "stalled")
        ended = ffmpeg_hls(root / "ended", seconds=3)
        procs += [live, stalled, ended]
        wait_until(lambda: listening(port), 10, "nginx to listen")
        wait_until(
            lambda: segments_in(root / "stalled" / "index.m3u8") >= 2,
            20,
            "ffmpeg to write two segments",
        )
        stalled.send_signal(signal.SIGKILL)  # killed: its playlist stays, frozen, no ENDLIST
        stalled.wait(5)
        ended.wait(30)  # a clean finish writes #EXT-X-ENDLIST
        assert "#EXT-X-ENDLIST" in (root / "ended" / "index.m3u8").read_text()
        wait_until(
            lambda: segments_in(root / "live" / "index.m3u8") >= 2,
            20,
            "the live stream to have two segments",
        )
        yield HlsServer(f"http://127.0.0.1:{port}")
    finally:
        for proc in procs:
            stop(proc)
            if proc.stderr is not None:
                proc.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def websocketd(*command: str) -> Iterator[str]:
    """websocketd on 127.0.0.1 running ``command`` per connection; yields ws://..."""
    program = need(WEBSOCKETD, "websocketd")
    port = free_port()
    proc = subprocess.Popen(
        [program, f"--port={port}", "--address=127.0.0.1", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(port), 10, "websocketd to listen")
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop(proc)


NGINX_TLS_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    server {{
        listen 127.0.0.1:{h2} ssl http2;
        location / {{ default_type application/json; return 200 '{{"status": "ok"}}'; }}
    }}
    server {{
        listen 127.0.0.1:{h1} ssl;
        location / {{ default_type application/json; return 200 '{{"status": "ok"}}'; }}
    }}
}}
"""


@dataclass(frozen=True)
class NginxTls:
    h2_port: int
    """TLS that offers HTTP/2 (and HTTP/1.1) by ALPN."""
    h1_port: int
    """TLS without HTTP/2."""


@contextlib.contextmanager
def nginx_tls(cert_pem: bytes, key_pem: bytes) -> Iterator[NginxTls]:
    """nginx on 127.0.0.1 serving TLS with the given certificate on two ports: one with
    HTTP/2, one without."""
    nginx = need(NGINX, "nginx")
    root = Path(tempfile.mkdtemp(prefix="synthprobe-tls-", dir="/tmp"))
    root.chmod(0o755)
    (root / "cert.pem").write_bytes(cert_pem)
    (root / "key.pem").write_bytes(key_pem)
    h2, h1 = free_port(), free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_TLS_CONF.format(dir=root, h2=h2, h1=h1))
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(h2) and listening(h1), 10, "nginx (TLS) to listen")
        yield NginxTls(h2, h1)
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


REDIS = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
)


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """redis-server on 127.0.0.1, nothing saved to disk; yields its port."""
    program = need(REDIS, "redis-server")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="synthprobe-redis-"))
    proc = subprocess.Popen(
        [
            program,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(port), 10, "redis-server to listen")
        yield port
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
)
DNSMASQ_ZONE = [
    "--local=/synth.invalid/",  # authoritative for it: unknown names are NXDOMAIN
    "--host-record=web.synth.invalid,127.0.0.7",
    "--host-record=v6only.synth.invalid,::7",  # AAAA only: A is NODATA
    "--host-record=multi.synth.invalid,127.0.0.8",
    "--host-record=multi.synth.invalid,127.0.0.9",
    "--mx-host=synth.invalid,mail.synth.invalid,10",
    "--txt-record=synth.invalid,v=spf1 -all",
    "--server=/broken.invalid/#",  # a zone with no upstream: REFUSED
]


def dnsmasq_command(port: int, listen: str = "127.0.0.1", extra: tuple[str, ...] = ()) -> list[str]:
    program = need(DNSMASQ, "dnsmasq-base")
    return [
        program,
        "--no-daemon",
        f"--port={port}",
        f"--listen-address={listen}",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--user=root",
        "--log-facility=/dev/null",
        *DNSMASQ_ZONE,
        *extra,
    ]


@contextlib.contextmanager
def dnsmasq() -> Iterator[int]:
    """dnsmasq on 127.0.0.1 serving the synth.invalid zone; yields its port."""
    port = free_port()
    proc = subprocess.Popen(
        dnsmasq_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: _answers_dns(port), 10, "dnsmasq to answer")
        yield port
    finally:
        stop(proc)


def _answers_dns(port: int) -> bool:
    import dns.message
    import dns.query

    try:
        dns.query.udp(dns.message.make_query("web.synth.invalid", "A"), "127.0.0.1", 0.2, port)
    except Exception:
        return False
    return True


class Tmux:
    """A tmux server of this test alone (``-L``: its own socket, no user config), with one
    pane running ``command; echo EXIT=$?``: a test never shares, nor kills, another's."""

    def __init__(
        self,
        command: list[str],
        cwd: Path,
        size: tuple[int, int] = (120, 30),
        env: dict[str, str] | None = None,
    ) -> None:
        self.base = [need(TMUX, "tmux"), "-L", f"synthprobe-{uuid.uuid4().hex}", "-f", os.devnull]
        line = f"cd {shlex.quote(str(cwd))}; {shlex.join(command)}; echo EXIT=$?; sleep 60"
        width, height = size
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "w", "-x", str(width), "-y", str(height), line],
            check=True,
            timeout=10,
            env={**os.environ, **(env or {})},  # the server's environment is the pane's
        )
        self.socket = subprocess.run(
            [*self.base, "display-message", "-p", "#{socket_path}"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()

    def screen(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "w"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "w", *keys], check=True, timeout=10)

    def resize(self, width: int, height: int) -> None:
        size = ["-x", str(width), "-y", str(height)]
        subprocess.run([*self.base, "resize-window", "-t", "w", *size], check=True, timeout=10)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], timeout=10, capture_output=True)
        # tmux leaves its socket file behind: one per test would pile up in /tmp
        with contextlib.suppress(OSError):
            os.unlink(self.socket)


CADDY = shutil.which("caddy")

CADDYFILE = """{{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system {dir}/data
	servers {{
		protocols h1 h2 h3
	}}
}}
https://127.0.0.1:{port}, https://localhost:{port} {{
	tls {dir}/cert.pem {dir}/key.pem
	redir /old /index.txt 302
	redir /to-http http://127.0.0.1:{port}/index.txt 302
	{extra}
	root * {dir}/www
	file_server
}}
"""


@dataclass
class Caddy:
    port: int
    """HTTPS on TCP (HTTP/1.1 and HTTP/2, advertising h3 by Alt-Svc) and HTTP/3 on UDP."""
    www: Path
    """The folder it serves: a test writes its files here."""


@contextlib.contextmanager
def caddy_server(cert_pem: bytes, key_pem: bytes, extra: str = "") -> Iterator[Caddy]:
    """Debian's caddy on 127.0.0.1 with the given certificate, serving a folder over
    HTTP/1.1, HTTP/2 and HTTP/3 on one port number (TCP and UDP); ``extra``: more
    Caddyfile lines inside the site block. Its state goes to a temporary folder."""
    caddy = need(CADDY, "caddy")
    root = Path(tempfile.mkdtemp(prefix="synthprobe-caddy-", dir="/tmp"))
    (root / "cert.pem").write_bytes(cert_pem)
    (root / "key.pem").write_bytes(key_pem)
    (root / "www").mkdir()
    (root / "www" / "index.txt").write_text("hello over caddy\n")
    port = free_port()
    conf = root / "Caddyfile"
    conf.write_text(CADDYFILE.format(dir=root, port=port, extra=extra))
    env = {
        **os.environ,
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root),
        "XDG_DATA_HOME": str(root),
    }
    proc = subprocess.Popen(
        [caddy, "run", "--config", str(conf), "--adapter", "caddyfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_until(lambda: listening(port) and _udp_bound(port), 15, "caddy to listen")
        yield Caddy(port, root / "www")
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _udp_bound(port: int) -> bool:
    """Whether a UDP socket is bound to ``port`` (caddy's HTTP/3 listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False
