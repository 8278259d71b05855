"""The grpc kind without a network: its config (block, URL, expect), the decoding of a
response (the length-prefixed framing, HealthCheckResponse, grpc-status) as tables and
fuzzed, and the judgement of what came back. Real servers: tests/test_grpc_real.py."""

from __future__ import annotations

import struct

import pytest
from google.protobuf.message import DecodeError
from grpclib.health.v1 import health_grpc, health_pb2
from hypothesis import given
from hypothesis import strategies as st

from synthprobe.classify import ProbeFailure
from synthprobe.errors import ConfigError
from synthprobe.expect import Reply
from synthprobe.models import Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.grpc import GrpcSpec
from synthprobe.probers.grpc.prober import (
    CHECK,
    Framing,
    FramingError,
    _Response,
    frame,
    grpc_status,
    judge,
    metadata,
    serving_status,
    unframe,
)

from .conftest import specs_from_yaml

SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def test_the_path_called_is_the_health_services_own() -> None:
    class Health(health_grpc.HealthBase):
        async def Check(self, stream: object) -> None: ...
        async def Watch(self, stream: object) -> None: ...

    assert CHECK in Health().__mapping__()


# --- config -------------------------------------------------------------------------


def _problems(probe: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        specs_from_yaml("probes:\n" + probe)
    return list(caught.value.problems)


BAD = [
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', grpc: {service: x, port: 1}}",
        "test.yaml:2: probes[0].grpc.port: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', grpc: {service: [a]}}",
        "test.yaml:2: probes[0].grpc.service: expected a string, got a list",
        id="service-not-a-string",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', grpc: {service: yes}}",
        "test.yaml:2: probes[0].grpc.service: expected a string, got a boolean (true) "
        "(YAML reads yes/no/on/off as booleans: quote it)",
        id="service-a-boolean",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', grpc: [service]}",
        "test.yaml:2: probes[0].grpc: expected a mapping, got a list",
        id="block-not-a-mapping",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1/grpc.health.v1.Health/Check'}",
        "test.yaml:2: probes[0].url: bad URL 'grpc://127.0.0.1:1/grpc.health.v1.Health/Check': "
        "a grpc:// URL is host and port only (the health check names its own path)",
        id="url-with-a-path",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpcs://127.0.0.1'}",
        "test.yaml:2: probes[0].url: bad URL 'grpcs://127.0.0.1': a grpcs:// URL needs a port",
        id="url-without-a-port",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://:50051'}",
        "test.yaml:2: probes[0].url: bad URL 'grpc://:50051': no host",
        id="url-without-a-host",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'https://127.0.0.1:1'}",
        "test.yaml:2: probes[0].url: bad URL 'https://127.0.0.1:1': scheme must be grpc "
        "or grpcs for kind grpc",
        id="url-of-another-scheme",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', expect: {status: [200]}}",
        "test.yaml:2: probes[0].expect.status: status does not apply to a grpc probe (it "
        "has no HTTP status: its replies are matched by its own block)",
        id="expect-status",
    ),
    pytest.param(
        "  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', expect: {body_contains: SERVING}}",
        "test.yaml:2: probes[0].expect.body_contains: body_contains does not apply to a "
        "grpc probe (it has no HTTP body: its replies are matched by its own block)",
        id="expect-body",
    ),
    pytest.param(
        "  - {name: g, kind: http, url: 'http://127.0.0.1:1', grpc: {service: x}}",
        "test.yaml:2: probes[0].grpc: only for kind grpc, not http",
        id="block-on-another-kind",
    ),
]


@pytest.mark.parametrize(("probe", "message"), BAD)
def test_a_bad_grpc_probe_is_a_config_error_naming_line_and_key(probe: str, message: str) -> None:
    assert _problems(probe) == [message]


def test_a_grpc_probe_reads_its_block_and_defaults_to_the_whole_server() -> None:
    text = (
        "probes:\n"
        "  - {name: a, kind: grpc, url: 'grpcs://chat.invalid:443', grpc: {service: chat.v1.M}}\n"
        "  - {name: b, kind: grpc, url: 'grpc://[::1]:50051', expect: {max_latency: 1s}}\n"
    )
    a, b = specs_from_yaml(text)
    assert (a.options, a.method) == (GrpcSpec(service="chat.v1.M"), "GRPC")
    assert b.options == GrpcSpec(service="")
    assert b.expect.max_latency == 1.0


def test_metadata_is_the_probes_headers_lower_cased_without_the_calls_own() -> None:
    [spec] = specs_from_yaml(
        "probes:\n  - {name: g, kind: grpc, url: 'grpc://127.0.0.1:1', headers: "
        "{Authorization: 'Bearer x', Content-Type: text/plain, TE: gzip, X-Tenant: t1}}\n"
    )
    sent = metadata(spec.headers)
    assert sent[:2] == [("authorization", "Bearer x"), ("x-tenant", "t1")]
    assert [k for k, _ in sent] == ["authorization", "x-tenant", "user-agent"]


# --- decoding -----------------------------------------------------------------------


FRAMES = [
    pytest.param(frame(b"\x08\x01"), None, id="one-message"),
    pytest.param(frame(b""), None, id="empty-message"),
    pytest.param(b"", Framing.NONE, id="no-message"),
    pytest.param(b"\x00\x00\x00", Framing.SHORT, id="short-prefix"),
    pytest.param(struct.pack(">?I", False, 10) + b"abc", Framing.SHORT, id="short-message"),
    pytest.param(b"\x01" + frame(b"ab")[1:], Framing.COMPRESSED, id="compressed"),
    pytest.param(b"\x07" + frame(b"ab")[1:], Framing.FLAG, id="flag-7"),
    pytest.param(struct.pack(">?I", False, 2**32 - 1), Framing.TOO_LONG, id="4GiB-claimed"),
    pytest.param(frame(b"ab") + frame(b"cd"), Framing.EXTRA, id="two-messages"),
]


@pytest.mark.parametrize(("data", "flaw"), FRAMES)
def test_unframe(data: bytes, flaw: Framing | None) -> None:
    if flaw is None:
        assert unframe(data, 1024) == data[5:]
    else:
        with pytest.raises(FramingError) as caught:
            unframe(data, 1024)
        assert caught.value.flaw is flaw
        assert str(caught.value).startswith(flaw.value)


@given(st.binary(max_size=300), st.integers(0, 400))
def test_a_framed_message_round_trips_or_is_over_max_body(message: bytes, max_body: int) -> None:
    data = frame(message)
    if len(message) <= max_body:
        assert unframe(data, max_body) == message
    else:
        with pytest.raises(FramingError) as caught:
            unframe(data, max_body)
        assert caught.value.flaw is Framing.TOO_LONG


@given(st.binary(max_size=64), st.integers(0, 64))
def test_any_bytes_unframe_to_a_message_or_a_framing_error(data: bytes, max_body: int) -> None:
    try:
        message = unframe(data, max_body)
    except FramingError:
        return
    assert frame(message) == data and len(message) <= max_body


@pytest.mark.parametrize(
    "name", ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"], ids=str.lower
)
def test_serving_status_names_each_value(name: str) -> None:
    value = health_pb2.HealthCheckResponse.ServingStatus.Value(name)
    message = health_pb2.HealthCheckResponse(status=value).SerializeToString()
    assert serving_status(message) == name


def test_a_serving_status_this_proto_does_not_name_is_its_number() -> None:
    assert serving_status(b"\x08\x07") == "7"  # field 1, varint 7: an open enum's new value


@given(st.binary(max_size=64))
def test_any_bytes_decode_to_a_serving_status_or_a_decode_error(data: bytes) -> None:
    try:
        name = serving_status(data)
    except DecodeError:
        return
    assert isinstance(name, str) and name


@given(st.integers(0, 2**31 - 1), st.binary(max_size=16))
def test_a_health_response_with_unknown_fields_still_has_its_status(
    status: int, extra: bytes
) -> None:
    # field 1 as a varint, then field 15 (unknown to the proto) as length-delimited bytes
    message = health_pb2.HealthCheckResponse(status=status % 4).SerializeToString()
    message += b"\x7a" + bytes([len(extra)]) + extra
    expected = health_pb2.HealthCheckResponse.ServingStatus.Name(status % 4)
    assert serving_status(message) == expected


GRPC_STATUS = [
    pytest.param("0", ("OK", 0), id="ok"),
    pytest.param("5", ("NOT_FOUND", 5), id="not-found"),
    pytest.param("12", ("UNIMPLEMENTED", 12), id="unimplemented"),
    pytest.param(" 14 ", ("UNAVAILABLE", 14), id="spaces"),
    pytest.param("99", ("99", 99), id="a-later-code"),
    pytest.param("abc", None, id="letters"),
    pytest.param("", None, id="empty"),
    pytest.param("-1", None, id="negative"),
    pytest.param("١", None, id="arabic-digit"),
    pytest.param("0x0", None, id="hex"),
]


@pytest.mark.parametrize(("value", "expected"), GRPC_STATUS)
def test_grpc_status(value: str, expected: tuple[str, int] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            grpc_status(value)
    else:
        assert grpc_status(value) == expected


# --- judging what came back ------------------------------------------------------------


def _response(trailers: dict[str, str] | None, data: bytes = b"") -> _Response:
    return _Response(
        headers={":status": "200", "content-type": "application/grpc"},
        trailers=trailers,
        data=bytearray(data),
        ended=True,
    )


JUDGED = [
    pytest.param(
        _response({"grpc-status": "5", "grpc-message": "unknown%20service%20x"}),
        (Reason.SERVER_STATUS, "grpc status NOT_FOUND: unknown service x"),
        id="not-found-with-message",
    ),
    pytest.param(
        _response({"grpc-status": "12"}),
        (Reason.SERVER_STATUS, "grpc status UNIMPLEMENTED"),
        id="unimplemented-without-message",
    ),
    pytest.param(
        _response({"grpc-status": "14", "grpc-message": "a%0Aline%1Bbreak"}),
        (Reason.SERVER_STATUS, "grpc status UNAVAILABLE: a line\\x1bbreak"),
        id="a-message-made-printable",
    ),
    pytest.param(
        _response({"grpc-status": "0"}, frame(b"\x08\x02")),
        (Reason.SERVER_STATUS, "serving status NOT_SERVING"),
        id="not-serving",
    ),
    pytest.param(
        _response({"grpc-status": "0"}, frame(b"")),
        (Reason.SERVER_STATUS, "serving status UNKNOWN"),
        id="empty-message-is-unknown",
    ),
    pytest.param(
        _response({"grpc-status": "0"}, frame(b"\x08\x03")),
        (Reason.SERVER_STATUS, "serving status SERVICE_UNKNOWN"),
        id="service-unknown",
    ),
    pytest.param(
        _response({"grpc-status": "0"}),
        (Reason.NETWORK_PROTOCOL, "grpc status OK with no response message"),
        id="ok-without-a-message",
    ),
    pytest.param(
        _response({"grpc-status": "0"}, frame(b"\xff\xff\xff")),
        (Reason.NETWORK_PROTOCOL, "malformed HealthCheckResponse: "),
        id="malformed-protobuf",
    ),
    pytest.param(
        _response({"grpc-status": "zero"}, frame(b"\x08\x01")),
        (Reason.NETWORK_PROTOCOL, "grpc-status 'zero' is not a number"),
        id="status-not-a-number",
    ),
    pytest.param(
        _response(None, frame(b"\x08\x01")),
        (Reason.NETWORK_PROTOCOL, "not gRPC: the response has no grpc-status"),
        id="no-trailers",
    ),
    pytest.param(
        _response({"grpc-status": "0"}, frame(b"\x08\x01" * 100)),
        (Reason.NETWORK_PROTOCOL, "grpc status OK with a message over max_body (200 bytes"),
        id="over-max-body",
    ),
]


@pytest.mark.parametrize(("response", "expected"), JUDGED)
def test_judge(response: _Response, expected: tuple[Reason, str]) -> None:
    attempt = Attempt()
    with pytest.raises(ProbeFailure) as caught:
        judge(response, 100, attempt, 5)
    reason, text = expected
    assert caught.value.classified.reason is reason
    assert caught.value.classified.error.startswith(text), caught.value.classified.error


def test_serving_passes_with_both_statuses_in_details() -> None:
    attempt = Attempt()
    data = frame(SERVING.SerializeToString())
    outcome = judge(_response({"grpc-status": "0"}, data), 100, attempt, 5)
    assert outcome.observation == Reply("SERVING")
    assert (outcome.bytes_in, outcome.bytes_out) == (len(data), 5)
    assert attempt.details == {"grpc_status": "OK", "serving_status": "SERVING"}
