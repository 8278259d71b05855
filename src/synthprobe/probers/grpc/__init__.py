"""Kind ``grpc``: the standard gRPC health check (``grpc.health.v1.Health/Check``) of a
service, over HTTP/2 without TLS (``grpc://``, h2c) or with it (``grpcs://``). ``SERVING``
passes. This module is what the config and ``probe list`` know of the kind; the prober,
which alone imports grpclib and protobuf, is in ``prober.py``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult

from synthprobe.config.nodes import Located
from synthprobe.config.readers import Field, Reader, Table
from synthprobe.models import Reason
from synthprobe.observes import Observes
from synthprobe.probers.kind import KindInfo
from synthprobe.steps import KindStep


@dataclass(frozen=True, slots=True)
class GrpcSpec:
    """What a ``grpc`` probe asks the health service."""

    service: str = ""
    """The service whose health is asked; "" asks about the whole server."""


def _service(r: Reader, loc: Located, path: str) -> str:
    return r.text(loc, path)


FIELDS = Table(Field("service", _service))


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> GrpcSpec:
    if loc is None:
        return GrpcSpec()
    block = FIELDS.read(r, loc, path)
    block.done()
    return GrpcSpec(**block.fields())


def check_url(parts: SplitResult) -> str | None:
    """``grpc://host:port`` or ``grpcs://host:port``: a port (gRPC has no usual one, as
    grpc_health_probe's ``-addr`` has none), and nothing after it: the path of the call
    is the health service's own."""
    if parts.port is None:
        return f"a {parts.scheme}:// URL needs a port"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return (
            f"a {parts.scheme}:// URL is host and port only (the health check names its own path)"
        )
    return None


TRAILERS = KindStep("trailers", Reason.TIMEOUT_READ, "no grpc-status within {t}")
"""After the response headers: waiting for the message and the trailers that end the
call. Its own step, so ttfb stays request sent -> response headers."""

KINDS = (
    KindInfo(
        name="grpc",
        prober="synthprobe.probers.grpc.prober:GrpcProber",
        schemes=("grpc", "grpcs"),
        default_method="GRPC",
        block="grpc",
        parse_block=parse,
        steps=(TRAILERS,),
        negotiates_http=False,
        observes=Observes.REPLY,
        check_url=check_url,
    ),
)
