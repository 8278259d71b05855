"""A target that records the trace context each request carried (the trace tests and
the export tests read it)."""

from __future__ import annotations

import asyncio

from synthprobe.demo import DemoPlatform
from synthprobe.demo.http import HttpRequest


class Recording(DemoPlatform):
    """The demo platform, keeping (path, traceparent or None) of each request."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str | None]] = []

    async def _route(
        self, req: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.seen.append((req.path, req.headers.get("traceparent")))
        await super()._route(req, reader, writer)
