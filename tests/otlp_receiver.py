"""An OTLP/HTTP receiver on 127.0.0.1 for the tests: it keeps every request whole and
decodes the payloads with the official ``opentelemetry-proto`` messages (never with
synthprobe's own code). It can also misbehave as a collector might."""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Mode(enum.StrEnum):
    OK = "ok"
    REFUSING = "refusing"
    """500 to everything."""
    SLOW = "slow"
    """Reads the request, then never answers (until the test ends)."""
    GARBAGE = "garbage"
    """Answers bytes that are not HTTP."""
    GARBAGE_200 = "garbage-200"
    """200 OK with a body that is no protobuf at all."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    raw: bytes
    """Request line, headers and body: every byte that arrived."""


@dataclass
class Receiver:
    url: str
    mode: Mode
    got: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def traces(self) -> list[ExportTraceServiceRequest]:
        out = []
        for r in self.got:
            if r.path == "/v1/traces":
                message = ExportTraceServiceRequest()
                message.ParseFromString(r.body)
                out.append(message)
        return out

    def metrics(self) -> list[ExportMetricsServiceRequest]:
        out = []
        for r in self.got:
            if r.path == "/v1/metrics":
                message = ExportMetricsServiceRequest()
                message.ParseFromString(r.body)
                out.append(message)
        return out

    def spans(self) -> list[Any]:
        return [
            span
            for message in self.traces()
            for resource in message.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


def attributes(items: Any) -> dict[str, Any]:
    """OTLP KeyValues -> a dict of plain values."""
    out: dict[str, Any] = {}
    for kv in items:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


@contextmanager
def receiver(mode: Mode = Mode.OK) -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            head = f"{self.requestline}\r\n{self.headers}".encode("latin-1")
            me = box[0]
            me.got.append(Received(self.path, dict(self.headers), body, head + body))
            if me.mode is Mode.SLOW:
                me.release.wait(30)
                return
            if me.mode is Mode.GARBAGE:
                self.wfile.write(b"\x16\x03 this is not HTTP at all \x00\xff\r\n\r\n")
                self.close_connection = True
                return
            status, answer = 200, b""
            if me.mode is Mode.REFUSING:
                status, answer = 500, b"collector says no"
            elif me.mode is Mode.GARBAGE_200:
                answer = b"\xff\xfe definitely not protobuf \x00"
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}", mode))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        box[0].release.set()
        server.shutdown()
        server.server_close()
