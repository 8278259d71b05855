"""DNS questions with dnspython, shared by the dns kind and by every probe that names a
``resolver``: one timed ``dns`` step, and the answer's rcode kept, so NXDOMAIN, NODATA
and SERVFAIL stay apart (getaddrinfo blurs them).

The bytes travel over our own asyncio sockets and only the messages are dnspython's:
whatever a server sends (garbage, a message cut short, an answer to another question,
a TCP connection closed mid-length) is told as ``dns.error`` naming what came, never an
exception dnspython's transport leaves unexplained (``EOFError`` after a truncated UDP
answer whose TCP retry the server closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.resolver

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.steps import Step

MAX_DATAGRAMS = 64
"""Datagrams from other addresses ignored while waiting for the server's answer: a
bound, so a flood on our port ends the question instead of looping until the deadline."""
_PARSE_ERRORS = (dns.exception.DNSException, ValueError, IndexError, struct.error, UnicodeError)
"""What dnspython raises on bytes that are not a DNS message: it is strict, but not
every check it makes ends in a DNSException."""


class AnswerError(Exception):
    """The server answered something that cannot be used: the message says what."""


def system_nameserver() -> str:
    """The first ``nameserver`` of /etc/resolv.conf, as the system's resolver asks it."""
    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration:
        servers = []
    if not servers:
        raise ProbeFailure(Reason.DNS_ERROR, "no nameserver in /etc/resolv.conf")
    return str(servers[0])


def _why(exc: Exception) -> str:
    """An OS error by its errno ("Connection refused"), not asyncio's wording of it."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def where(server: str, port: int) -> str:
    """``127.0.0.1:53``, ``[::1]:53``."""
    return f"[{server}]:{port}" if ":" in server else f"{server}:{port}"


def _make_query(name: str, rdtype: str) -> dns.message.Message:
    try:
        return dns.message.make_query(name, rdtype)
    except dns.exception.DNSException as exc:
        # a name no DNS message can carry (a label over 63 bytes, an empty label)
        raise AnswerError(f"cannot ask for {name!r}: {exc}") from exc


async def ask(
    name: str, rdtype: str, server: str | None, port: int, tcp: bool, attempt: Attempt
) -> tuple[dns.message.Message, str, bool]:
    """(response, server asked, whether TCP was used); the query is the timed dns step.
    ``server`` None asks the system's resolver."""
    server = server or system_nameserver()
    asked = where(server, port)
    attempt.target = (server, port)
    attempt.clock.begin(Step.DNS)
    try:
        response, used_tcp = await _query(_make_query(name, rdtype), server, port, tcp)
    except (OSError, AnswerError) as exc:
        # for a DNS probe, a server that cannot be asked is a resolver failure
        attempt.clock.fail(Step.DNS)
        detail = _why(exc)
        raise ProbeFailure(Reason.DNS_ERROR, f"{asked}: {detail}") from exc
    attempt.clock.end(Step.DNS)
    return response, asked, used_tcp


async def _query(
    query: dns.message.Message, server: str, port: int, tcp: bool
) -> tuple[dns.message.Message, bool]:
    if tcp:
        return await _over_tcp(query, server, port, retry=False), True
    try:
        return await _over_udp(query, server, port), False
    except _Truncated:
        pass
    # a truncated UDP answer (TC) is asked again over TCP, as every resolver does
    try:
        return await _over_tcp(query, server, port, retry=True), True
    except OSError as exc:
        raise AnswerError(f"truncated UDP answer; the TCP retry failed: {_why(exc)}") from exc


class _Truncated(Exception):
    """The UDP answer has TC set: ask again over TCP."""

    def __init__(self, partial: dns.message.Message) -> None:
        super().__init__("truncated")
        self.partial = partial
        """The header and question, all dnspython reads of a truncated answer."""


class _Inbox(asyncio.DatagramProtocol):
    """The datagrams that reach our UDP socket, and its errors, in order (a few only)."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[bytes, Any] | OSError] = asyncio.Queue(8)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # a full inbox drops: we read one answer, never a flood
        with contextlib.suppress(asyncio.QueueFull):
            self.items.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            with contextlib.suppress(asyncio.QueueFull):
                self.items.put_nowait(exc)


async def _over_udp(query: dns.message.Message, server: str, port: int) -> dns.message.Message:
    address = ipaddress.ip_address(server)
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    loop = asyncio.get_running_loop()
    # not connected, as dnspython asks: a port nobody listens on stays silence (dns.timeout)
    transport, inbox = await loop.create_datagram_endpoint(_Inbox, family=family)
    try:
        transport.sendto(query.to_wire(), (server, port))
        for _ in range(MAX_DATAGRAMS):
            item = await inbox.items.get()
            if isinstance(item, OSError):
                raise item
            data, sender = item
            if ipaddress.ip_address(sender[0]) != address or sender[1] != port:
                continue  # not from the server asked: what resolvers ignore
            try:
                response = _parse(data)
            except _Truncated as truncated:
                _check_match(query, truncated.partial)  # TC on an answer to another question
                raise
            _check_match(query, response)
            return response
        raise AnswerError(
            f"{MAX_DATAGRAMS} datagrams from other addresses and none from the server"
        )
    finally:
        transport.abort()


async def _over_tcp(
    query: dns.message.Message, server: str, port: int, *, retry: bool
) -> dns.message.Message:
    closed = (
        "truncated UDP answer; the TCP retry was closed by the server"
        if retry
        else "TCP connection closed by the server"
    )
    reader, writer = await asyncio.open_connection(server, port)
    try:
        wire = query.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        try:
            head = await reader.readexactly(2)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise AnswerError(f"{closed} after 1 of the 2 length bytes") from None
            raise AnswerError(f"{closed} before an answer") from None
        (length,) = struct.unpack("!H", head)
        try:
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise AnswerError(
                f"{closed} after {len(exc.partial):,} of the answer's {length:,} bytes"
            ) from None
    finally:
        # abort, not close: never wait on a server that stopped reading
        writer.transport.abort()
    try:
        response = _parse(data, tcp=True)
        _check_match(query, response)
    except AnswerError as exc:
        raise AnswerError(f"truncated UDP answer; over TCP: {exc}" if retry else str(exc)) from None
    return response


def _parse(data: bytes, *, tcp: bool = False) -> dns.message.Message:
    try:
        return dns.message.from_wire(data, raise_on_truncation=not tcp)
    except dns.message.Truncated as exc:
        partial: dns.message.Message = exc.kwargs["message"]  # what .message() returns, typed
        raise _Truncated(partial) from None
    except _PARSE_ERRORS as exc:
        why = str(exc) or type(exc).__name__
        raise AnswerError(f"malformed answer ({len(data):,} bytes): {why}") from None


def _questions(message: dns.message.Message) -> str:
    asked = [f"{q.name} {dns.rdatatype.to_text(q.rdtype)}" for q in message.question]
    return ", ".join(asked) or "no question"


def _check_match(query: dns.message.Message, response: dns.message.Message) -> None:
    """An answer that is not the answer to our question is refused, with what differs."""
    if query.is_response(response):
        return
    if not response.flags & dns.flags.QR:
        raise AnswerError("the server sent a query, not an answer (QR bit not set)")
    if response.id != query.id:
        raise AnswerError(f"answer has ID {response.id}, the question had ID {query.id}")
    if response.opcode() != query.opcode():
        opcode = dns.opcode.to_text(response.opcode())
        raise AnswerError(f"answer has opcode {opcode}, the question was QUERY")
    raise AnswerError(f"answer is for {_questions(response)}, the question was {_questions(query)}")


def answers_of(response: dns.message.Message, rdtype: str) -> tuple[list[str], int | None]:
    """The answers of the asked type, as text, and the smallest TTL among them."""
    wanted = dns.rdatatype.from_text(rdtype)
    texts: list[str] = []
    ttl: int | None = None
    for rrset in response.answer:
        if rrset.rdtype != wanted:
            continue
        texts += [rdata.to_text() for rdata in rrset]
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return texts, ttl


async def resolve_with(
    server: str, port: int, host: str, ip_version: int | None, attempt: Attempt
) -> list[str]:
    """``host``'s addresses from ``server``: A and AAAA asked at once (IPv4 first), or
    only the family ``ip_version`` asks; labelled as the dns kind labels them."""
    types = {4: ["A"], 6: ["AAAA"]}.get(ip_version or 0, ["A", "AAAA"])
    asked = where(server, port)
    attempt.target = (server, port)
    attempt.details["resolver"] = asked
    attempt.clock.begin(Step.DNS)
    try:
        queries = [_make_query(host, t) for t in types]
        # a task group, not gather: the other question is cancelled when one fails
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_query(q, server, port, False)) for q in queries]
    except* (OSError, AnswerError) as failed:
        attempt.clock.fail(Step.DNS)
        detail = _why(failed.exceptions[0])
        raise ProbeFailure(Reason.DNS_ERROR, f"{host}: resolver {asked}: {detail}") from None
    attempt.clock.end(Step.DNS)
    addresses: list[str] = []
    for task, rdtype in zip(tasks, types, strict=True):
        response = task.result()[0]
        code = response.rcode()
        if code == dns.rcode.NXDOMAIN:
            raise ProbeFailure(Reason.DNS_NXDOMAIN, f"{host}: NXDOMAIN from resolver {asked}")
        if code != dns.rcode.NOERROR:
            text = dns.rcode.to_text(code)
            raise ProbeFailure(Reason.DNS_ERROR, f"{host}: {text} from resolver {asked}")
        addresses += answers_of(response, rdtype)[0]
    if not addresses:
        family = f"IPv{ip_version} " if ip_version else ""
        raise ProbeFailure(
            Reason.DNS_NO_ADDRESS, f"{host} has no {family}address (NODATA from {asked})"
        )
    return addresses
