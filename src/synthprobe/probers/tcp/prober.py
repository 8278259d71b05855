"""``tcp`` probes: DNS, connect, TLS for ``tls://``, then an optional exchange of text.

asyncio streams, not httpx: there is no HTTP here. The steps are the same as HTTP's, so
a refused port, a reset, an untrusted certificate or a silent service get the same
reasons as they would for HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from synthprobe.classify import ProbeFailure
from synthprobe.expect import Reply, reply_matches, reply_wanted
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt, cert_not_after
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import each_address, resolve
from synthprobe.probers.tcp import FIRST_BYTE, MORE, TcpSpec
from synthprobe.steps import Step

QUIET = 0.5
"""Seconds without a new byte after which a reply that does not match yet is final: a
service that has said its piece rarely pauses this long mid-line."""
MAX_REPLY = 64 * 1024
"""Bytes of reply read at most: enough for any banner or status line. The reader's
buffer is bounded by it too, so a server that streams without end costs no memory."""
SHOWN = 200
"""Bytes of the reply kept in ``details.reply``."""


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


class TcpProber:
    """Connect, handshake, send ``tcp.send``, read until ``tcp.expect`` matches."""

    def prepare(self, spec: ProbeSpec[TcpSpec]) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec[TcpSpec], attempt: Attempt, net: Network) -> ProbeOutcome:
        options = spec.options
        url = httpx.URL(spec.url)
        addresses = await resolve(url, attempt, net, spec.ip_version, spec.resolver)
        port = url.port
        assert port is not None  # the kind's URL rule requires one

        async def at_address(ip: str) -> ProbeOutcome:
            attempt.target = (ip, port)
            with attempt.clock.timing(Step.CONNECT, OSError):
                reader, writer = await asyncio.open_connection(ip, port, limit=MAX_REPLY)
            try:
                peer = writer.get_extra_info("peername")
                if isinstance(peer, tuple):
                    attempt.remote = (str(peer[0]), int(peer[1]))
                if url.scheme == "tls":
                    await self._handshake(writer, url.host, spec.verify_tls, attempt, net)
                return await self._converse(options, reader, writer, attempt)
            finally:
                # abort, not close: never wait on a peer that stopped reading
                writer.transport.abort()

        return await each_address(addresses, attempt, at_address)

    @staticmethod
    async def _handshake(
        writer: asyncio.StreamWriter, host: str, verify: bool, attempt: Attempt, net: Network
    ) -> None:
        with attempt.clock.timing(Step.TLS, OSError, EOFError):
            await writer.start_tls(net.ssl_context(verify), server_hostname=host)
        attempt.cert_not_after = cert_not_after(writer)

    @staticmethod
    async def _converse(
        options: TcpSpec,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        attempt: Attempt,
    ) -> ProbeOutcome:
        sent = b""
        if options.send is not None:
            sent = options.send.encode()
            attempt.clock.begin(Step.SEND)
            writer.write(sent)
            await writer.drain()
            attempt.clock.end(Step.SEND)
        if options.expect is None and options.expect_regex is None:
            return ProbeOutcome(Reply(), 0, len(sent))
        attempt.clock.begin(FIRST_BYTE)
        reply = await reader.read(MAX_REPLY)
        if not reply:
            attempt.clock.fail(FIRST_BYTE)
            raise ProbeFailure(Reason.NETWORK_CLOSED, "closed without any reply")
        attempt.clock.end(FIRST_BYTE)
        attempt.details["reply"] = _text(reply[:SHOWN])
        attempt.clock.begin(MORE)
        while not reply_matches(_text(reply), options):
            if len(reply) >= MAX_REPLY:
                # our cap, not the server, ends the reply: say so (the server may still send)
                raise ProbeFailure(
                    Reason.SERVER_REPLY,
                    f"reply {_text(reply[:80])!r} does not {reply_wanted(options)} in its first "
                    f"{MAX_REPLY // 1024} KiB (our cap: the rest was not read)",
                )
            ended = ""
            try:
                async with asyncio.timeout(QUIET):
                    more = await reader.read(MAX_REPLY - len(reply))
            except TimeoutError:
                more, ended = b"", f"nothing more for {QUIET:g}s"
            if not more:
                raise ProbeFailure(
                    Reason.SERVER_REPLY,
                    f"reply {_text(reply[:80])!r} does not {reply_wanted(options)} "
                    f"({ended or 'then the server closed'})",
                )
            reply += more
            attempt.details["reply"] = _text(reply[:SHOWN])
        attempt.clock.end(MORE)
        with contextlib.suppress(Exception):
            writer.write_eof()
        attempt.details["reply_bytes"] = len(reply)
        return ProbeOutcome(Reply(_text(reply[:SHOWN])), len(reply), len(sent))
