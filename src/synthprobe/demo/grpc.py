"""The demo's gRPC service: the standard health service (``grpc.health.v1.Health``), served
by grpclib, with one service up and one down, for ``kind: grpc`` probes. A chat backend
that says NOT_SERVING while its HTTP port answers 200 is the outage the kind is for.

Imported only when the demo starts its extras: grpclib and protobuf stay out of every
other command."""

from __future__ import annotations

import socket
import ssl

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_grpc import HealthBase
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.server import Server, Stream

STATUSES = {
    "": HealthCheckResponse.SERVING,
    "feed.v1.Ranker": HealthCheckResponse.SERVING,
    "chat.v1.Messages": HealthCheckResponse.NOT_SERVING,
}
"""Service -> what the demo's health service says of it; any other name is NOT_FOUND,
as grpcio's health servicer answers."""


class DemoHealth(HealthBase):
    async def Check(self, stream: Stream[HealthCheckRequest, HealthCheckResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None  # grpclib ends a unary call without one itself
        status = STATUSES.get(request.service)
        if status is None:
            raise GRPCError(Status.NOT_FOUND, f"unknown service {request.service}")
        await stream.send_message(HealthCheckResponse(status=status))

    async def Watch(self, stream: Stream[HealthCheckRequest, HealthCheckResponse]) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, "the demo answers Check only")


async def serve_grpc_health(
    host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[Server, int]:
    """The health service listening on ``host:port`` (0: any free port), over TLS with
    ``tls`` (bench/grpc_cpu.py); the server and the port it got."""
    # IPPROTO_TCP named: grpclib turns Nagle off only on sockets that say so (else a
    # response's frames wait on a delayed ACK, 40 ms now and then)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    server = Server([DemoHealth()])
    await server.start(sock=sock, ssl=tls)
    return server, int(sock.getsockname()[1])
