"""httpcore's network layer on asyncio itself, timed by the kernel.

httpcore reaches the network through anyio unless told otherwise: every read and write
opens a cancel scope and asks sniffio which event loop runs, a fifth of a probe's CPU
(bench/fidelity.py). ``BACKEND`` does the same work with plain asyncio calls.

It also reads with ``recvmsg`` and ``SO_TIMESTAMPNS`` (Linux), so every read carries the
time the kernel received those bytes. The timeline ends a response's steps at that
time: a response that arrived while our event loop was busy with other probes is timed
when it arrived, not when we got round to reading it. Elsewhere (no SO_TIMESTAMPNS)
the arrival time is when the read returned, as before.

Errors are raised as httpcore's anyio backend raises them (the same httpcore exception
types, chained to the same OSError or SSLError), so classify.py sees no difference.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
import ssl
import struct
import sys
import time
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import httpcore

T = TypeVar("T")

_SO_TIMESTAMPNS: int | None = getattr(
    socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None
)
"""Linux's value when Python does not name it (SO_TIMESTAMPNS_OLD: a native timespec)."""
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
_CHUNK = 65536
ARRIVAL = "synthprobe.arrival"
"""``get_extra_info`` key: perf_counter time the kernel received the last bytes read."""
HANDSHAKE_RTT = "synthprobe.handshake_rtt"
"""``get_extra_info`` key: the TCP handshake in seconds as the kernel timed it, or None."""


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _within(awaitable: Awaitable[T], timeout: float | None) -> T:
    # probes pass no timeouts (the runner's deadline is the clock); httpcore may
    if timeout is None:
        return await awaitable
    async with asyncio.timeout(timeout):
        return await awaitable


class _Socket:
    """A connected non-blocking TCP socket that knows when its last bytes arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stamped = False
        if _SO_TIMESTAMPNS is not None and _ANCILLARY:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass
        self.last_arrival: float | None = None
        """``time.perf_counter()`` clock: when the kernel received the last bytes read."""
        self._watched: tuple[asyncio.AbstractEventLoop, int, asyncio.Future[None]] | None = None
        self.handshake_rtt = _handshake_rtt(sock)
        """Seconds from SYN to SYN-ACK as the kernel timed them (None if unknown)."""

    async def recv(self, max_bytes: int) -> bytes:
        while True:
            try:
                if self.stamped:
                    data, ancillary, _flags, _addr = self.sock.recvmsg(max_bytes, _ANCILLARY)
                else:
                    data, ancillary = self.sock.recv(max_bytes), []
            except (BlockingIOError, InterruptedError):
                await self._readable()
                continue
            if data:
                self.last_arrival = _arrival(ancillary)
            return data

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        fd = self.sock.fileno()
        loop.add_reader(fd, _wake, future)
        self._watched = (loop, fd, future)
        try:
            await future
        finally:
            self._unwatch()

    def _unwatch(self) -> None:
        # before the socket closes: a closed descriptor's number is soon another socket's
        if self._watched is not None:
            loop, fd, future = self._watched
            self._watched = None
            loop.remove_reader(fd)
            _wake(future)  # a reader waiting on it finds the socket closed (EBADF)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    def close(self) -> None:
        self._unwatch()
        self.sock.close()

    def extra(self, info: str) -> Any:
        # our two figures ride on httpcore's own stream-info call (get_extra_info)
        if info == ARRIVAL:
            return self.last_arrival
        if info == HANDSHAKE_RTT:
            return self.handshake_rtt
        if self.sock.fileno() < 0:
            return None
        if info == "server_addr":
            return self.sock.getpeername()
        if info == "client_addr":
            return self.sock.getsockname()
        if info == "socket":
            return self.sock
        if info == "is_readable":
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable)
        return None


_TCP_INFO = getattr(socket, "TCP_INFO", None)
_RTT_AT, _RETRANS_AT = 68, 100
"""Offsets in Linux's struct tcp_info of tcpi_rtt (microseconds) and tcpi_total_retrans."""


def _handshake_rtt(sock: socket.socket) -> float | None:
    """The connection's only RTT sample so far, taken by the kernel on the SYN-ACK: the
    TCP handshake, free of our event loop's lateness. None when a SYN was retransmitted
    (the sample is then not the handshake: Karn's rule) or the platform has no TCP_INFO."""
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _RETRANS_AT + 4)
    except OSError:
        return None
    if len(info) < _RETRANS_AT + 4:
        return None
    (rtt,) = struct.unpack_from("@I", info, _RTT_AT)
    (retransmitted,) = struct.unpack_from("@I", info, _RETRANS_AT)
    return rtt / 1e6 if rtt and not retransmitted else None


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The kernel's receive time of a read, on the perf_counter clock (never later than
    now: the two clocks are read back to back)."""
    now = time.perf_counter()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = _TIMESPEC.unpack_from(data)
            late = time.time() - (seconds + nanos / 1e9)
            return now - late if late > 0 else now
    return now


async def _connect(sock: socket.socket, address: tuple[str, int]) -> None:
    """A non-blocking connect to an address (never a name: uvloop's sock_connect sends
    even a numeric one through getaddrinfo in a thread, a millisecond of our time)."""
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EAGAIN):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _wake, future)
        try:
            await future
        finally:
            loop.remove_writer(fd)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code != 0:
        raise OSError(code, os.strerror(code))


class _Broken(Exception):
    """The transport under TLS failed (anyio's BrokenResourceError)."""


class _Ended(Exception):
    """The peer ended the TLS stream without close_notify (anyio's EndOfStream)."""


class PlainStream(httpcore.AsyncNetworkStream):
    """A connection as httpcore sees it. The error mapping lives here once; ``TlsStream``
    only changes how bytes go in and out."""

    def __init__(self, raw: _Socket) -> None:
        self.raw = raw

    async def _recv(self, max_bytes: int) -> bytes:
        return await self.raw.recv(max_bytes)

    async def _send(self, data: bytes) -> None:
        await self.raw.send(data)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await _within(self._recv(max_bytes), timeout)
        except _Ended:
            return b""  # TLS ended without close_notify: an end of stream, as anyio says
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except (_Broken, OSError) as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            await _within(self._send(buffer), timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (_Broken, _Ended, OSError) as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self.raw.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if isinstance(self, TlsStream):
            raise NotImplementedError("TLS inside TLS (an https proxy) is not supported")
        stream = TlsStream(self.raw, ssl_context, server_hostname)
        try:
            await _within(stream.handshake(), timeout)
        except TimeoutError as exc:
            self.raw.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except _Ended:
            self.raw.close()
            # said as a TLS failure, in words (OpenSSL's is UNEXPECTED_EOF_WHILE_READING)
            closed = ssl.SSLEOFError(
                ssl.SSL_ERROR_EOF, "the server closed the connection mid-handshake"
            )
            raise httpcore.ConnectError(str(closed)) from closed
        except (_Broken, ssl.SSLError) as exc:
            self.raw.close()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:
            self.raw.close()
            raise
        return stream

    def get_extra_info(self, info: str) -> Any:
        return self.raw.extra(info)


class TlsStream(PlainStream):
    """TLS over the same socket with memory BIOs, as asyncio and anyio do it."""

    def __init__(self, raw: _Socket, context: ssl.SSLContext, hostname: str | None) -> None:
        super().__init__(raw)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._in, self._out, server_hostname=hostname)

    async def handshake(self) -> None:
        await self._call(self.ssl_object.do_handshake)

    async def _recv(self, max_bytes: int) -> bytes:
        data: bytes = await self._call(self.ssl_object.read, max_bytes)
        return data

    async def _send(self, data: bytes) -> None:
        await self._call(self.ssl_object.write, data)

    async def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            await self.raw.send(pending)

    async def _call(self, fn: Any, *args: Any) -> Any:
        while True:
            try:
                result = fn(*args)
            except ssl.SSLWantReadError:
                pass  # read below, outside this handler: a reset must not look like TLS
            except ssl.SSLWantWriteError:
                await self._flush()
                continue
            except ssl.SSLSyscallError as exc:
                raise _Broken(str(exc)) from exc
            except ssl.SSLError as exc:
                if isinstance(exc, ssl.SSLEOFError) or "UNEXPECTED_EOF" in (exc.strerror or ""):
                    raise _Ended from None
                raise
            else:
                await self._flush()
                return result
            try:
                await self._flush()
                data = await self.raw.recv(_CHUNK)
            except OSError as exc:
                self._in.write_eof()
                self._out.write_eof()
                raise _Broken(str(exc)) from exc
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self.ssl_object
        return self.raw.extra(info)


class Backend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if local_address is not None:
                sock.bind((local_address, 0))
            await _within(_connect(sock, (host, port)), timeout)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:
            sock.close()
            raise
        return PlainStream(_Socket(sock))

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("probes connect over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


BACKEND = Backend()
"""Stateless: one for every transport of the process."""
