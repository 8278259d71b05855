"""Response bodies read up to ``max_body``, decoded through up to MAX_CODINGS stacked
Content-Encodings with every stage bounded: a bomb stops at ``max_body``, whatever the
stack (tests/test_hostile_http.py)."""

from __future__ import annotations

import zlib
from typing import Any

import httpx

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason

DECODED = ("gzip", "x-gzip", "deflate", "br")
"""Content-Encodings read as bodies: we ask for gzip and deflate; br comes anyway from
some servers. zstd is not decoded: its streaming API cannot bound the output of one
chunk, so a zstd bomb could not be stopped at max_body."""

MAX_CODINGS = 5
"""Stacked Content-Encodings decoded at most, as curl (CVE-2022-32206): each costs a
decoder's memory. A longer list is kept as it came, like an unknown coding."""

_PULL = 65536
"""Bytes one decoding stage hands the next at a time."""


def content_encoding(headers: tuple[tuple[str, str], ...]) -> str:
    """Every Content-Encoding header of a response, joined as one list (RFC 9110 5.3)."""
    return ", ".join(v for k, v in headers if k == "content-encoding")


def codings(encoding: str) -> list[str]:
    """The Content-Encoding list in the order applied, lower-cased, without identity."""
    listed = (part.strip().lower() for part in encoding.split(","))
    return [coding for coding in listed if coding not in ("", "identity")]


def undecodable(encoding: str) -> str | None:
    """The Content-Encoding, when synthprobe cannot read a body sent with it."""
    listed = codings(encoding)
    if len(listed) > MAX_CODINGS or any(coding not in DECODED for coding in listed):
        return ", ".join(listed)
    return None


class _Stage:
    """One coding of a body, decoded on demand: never more than asked for per call."""

    def __init__(self, coding: str, cap: int | None) -> None:
        self.coding = coding
        self.cap = cap
        """Bytes this stage may produce in all (None: its caller bounds it)."""
        self.produced = 0
        self.ended = False
        """The coded stream ended: later input is ignored (curl ignores it too)."""
        self.cut = False
        """The cap was reached: a bomb inside the stack."""
        self._input = b""
        self._output = b""
        """Decoded bytes beyond what was asked (brotli hands out whole blocks)."""
        self._deflate = coding == "deflate"
        self._fresh = True
        self._z: Any = None
        self._br: Any = None
        if coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._deflate:
            self._z = zlib.decompressobj()
        else:
            import brotli

            self._br = brotli.Decompressor()

    @property
    def done(self) -> bool:
        return (self.ended or self.cut) and not self._output

    def feed(self, data: bytes) -> None:
        if not (self.ended or self.cut):
            self._input += data

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` (> 0) decoded bytes of the input fed so far; b"" when it
        needs more."""
        if self.cap is not None:
            limit = min(limit, self.cap - self.produced)
        if limit <= 0:  # zlib reads a max_length of 0 as "no limit"
            self.cut = self.cut or self.cap is not None
            return b""
        if self._output:
            out, self._output = self._output[:limit], self._output[limit:]
        elif self.ended or self.cut:
            return b""
        else:
            out = self._brotli(limit) if self._br is not None else self._zlib(limit)
            out, self._output = out[:limit], out[limit:]
        self.produced += len(out)
        if self.cap is not None and self.produced >= self.cap:
            self.cut = True
        return out

    def _zlib(self, limit: int) -> bytes:
        data, self._input = self._input, b""
        try:
            out: bytes = self._z.decompress(data, limit)
        except zlib.error:
            if self._deflate and self._fresh:
                # "deflate" is often sent without its zlib header: raw deflate
                self._z, self._fresh, self._input = zlib.decompressobj(-zlib.MAX_WBITS), False, data
                return self._zlib(limit)
            raise self._invalid() from None
        self._fresh = False
        self._input = self._z.unconsumed_tail
        # bytes after the stream's end would pile up in unused_data: take no more
        self.ended = self._z.eof
        return out

    def _brotli(self, limit: int) -> bytes:
        data, self._input = self._input, b""
        if data and not self._br.can_accept_more_data():
            data, self._input = b"", data  # it must hand out what it holds first
        try:
            out: bytes = self._br.process(data, output_buffer_limit=limit)
            self.ended = not out and self._br.is_finished()
        except Exception:  # brotli.error, whose module may be absent for mypy
            raise self._invalid() from None
        return out

    def _invalid(self) -> ProbeFailure:
        return ProbeFailure(
            Reason.NETWORK_PROTOCOL,
            f"body is not valid {self.coding} data, as its Content-Encoding says",
        )


class BoundedDecoder:
    """Content-Encoding gzip, deflate and br, stacked up to MAX_CODINGS deep, decoded
    with a hard limit on the output: httpx inflates each network chunk whole, so a gzip
    bomb's 64 KiB chunk becomes 64 MB before any limit applies. A stage inside a stack
    produces at most ``max_body`` plus an eighth and 64 KiB (more than the coded form of
    ``max_body`` bytes can take), so a bomb inside a stack is bounded as well. Other
    encodings are kept as they came (and said so)."""

    def __init__(self, encoding: str, max_body: int) -> None:
        listed = [] if undecodable(encoding) else codings(encoding)
        inner = max_body + max_body // 8 + _PULL
        # decoded in the reverse of the order applied; the last stage is bounded by room
        self._stages = [
            _Stage(coding, None if n == 0 else inner) for n, coding in enumerate(listed)
        ][::-1]

    @property
    def finished(self) -> bool:
        """A stage's stream ended: nothing more can come out, so read no more."""
        return any(stage.done for stage in self._stages)

    @property
    def cut(self) -> bool:
        """A stage inside the stack reached its cap: the body was not read whole."""
        return any(stage.cut for stage in self._stages)

    def decode(self, data: bytes, room: int) -> tuple[bytes, bool]:
        """Up to ``room`` decoded bytes; True when more would have followed."""
        if not self._stages:
            return data[:room], len(data) > room
        self._stages[0].feed(data)
        out = self._pull(len(self._stages) - 1, room + 1)
        return out[:room], len(out) > room

    def _pull(self, index: int, limit: int) -> bytes:
        stage = self._stages[index]
        out = bytearray()
        while len(out) < limit:
            got = stage.take(limit - len(out))
            if got:
                out += got
                continue
            if index == 0 or stage.done:
                break
            upstream = self._pull(index - 1, _PULL)
            if not upstream:
                break
            stage.feed(upstream)
        return bytes(out)


async def read_body(response: httpx.Response, max_body: int) -> tuple[bytes, bool]:
    """The first ``max_body`` bytes of the decoded body, and whether there was more."""
    decoder = BoundedDecoder(response.headers.get("content-encoding", ""), max_body)
    body = bytearray()
    async for chunk in response.aiter_raw():
        piece, more = decoder.decode(chunk, max_body - len(body))
        body += piece
        if more:
            return bytes(body), True
        if decoder.finished:
            # the coded stream ended: what follows is ignored, as curl does; or a bomb
            # inside a stack was cut
            return bytes(body), decoder.cut
    return bytes(body), False
