"""classify.py is pure: exceptions as httpx really chains them -> one class and reason.

The chains are built the way docs/httpx.md measured them (root in ``__context__`` or
``args`` after ``raise ... from None``); the real-server tests prove the same end to end.
"""

from __future__ import annotations

import errno
import socket
import ssl

import httpx
import pytest

from synthprobe.classify import (
    Classified,
    ProbeFailure,
    classify_deadline,
    classify_exception,
    exception_chain,
)
from synthprobe.models import Failure, Reason
from synthprobe.probers import KINDS
from synthprobe.steps import KindStep, Step


def wrapped(outer: BaseException, root: BaseException, how: str = "context") -> BaseException:
    if how == "context":
        outer.__context__ = root
        outer.__suppress_context__ = True  # `raise ... from None`
    elif how == "cause":
        outer.__cause__ = root
    return outer


def cert_error() -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    err.verify_message = "self-signed certificate"
    return err


CASES = [
    (
        "nxdomain",
        wrapped(
            httpx.ConnectError("[Errno -2] Name or service not known"),
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        ),
        "dns.nxdomain",
    ),
    ("eai-again", socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), "dns.error"),
    ("no-data", socket.gaierror(socket.EAI_NODATA, "No address"), "dns.no_address"),
    ("refused-in-args", httpx.ConnectError("All connection attempts failed"), None),
    (
        "refused",
        wrapped(
            httpx.ConnectError("All connection attempts failed"),
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ),
        "network.refused",
    ),
    (
        "refused-in-group",
        wrapped(
            httpx.ConnectError("x"),
            ExceptionGroup(
                "multiple",
                [
                    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
                    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
                ],
            ),
        ),
        "network.refused",
    ),
    (
        "reset",
        wrapped(httpx.ReadError(""), ConnectionResetError(errno.ECONNRESET, "reset")),
        "network.reset",
    ),
    (
        "broken-pipe",
        wrapped(httpx.WriteError(""), BrokenPipeError(errno.EPIPE, "pipe")),
        "network.reset",
    ),
    (
        "unreachable",
        wrapped(httpx.ConnectError(""), OSError(errno.ENETUNREACH, "Network is unreachable")),
        "network.unreachable",
    ),
    ("host-unreachable", OSError(errno.EHOSTUNREACH, "No route to host"), "network.unreachable"),
    (
        "cert",
        wrapped(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"), cert_error()),
        "network.tls",
    ),
    (
        "tls-version",
        wrapped(
            httpx.ConnectError("wrong version"),
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        ),
        "network.tls",
    ),
    (
        "closed",
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        "network.closed",
    ),
    (
        "closed-mid-body",
        httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body: incomplete chunked read"
        ),
        "network.closed",
    ),
    (
        "garbage",
        httpx.RemoteProtocolError("illegal status line: bytearray(b'SSH-2.0')"),
        "network.protocol",
    ),
    ("local-protocol", httpx.LocalProtocolError("bad header"), "network.protocol"),
    ("connect-timeout", wrapped(httpx.ConnectTimeout(""), TimeoutError()), "timeout.connect"),
    ("read-timeout", httpx.ReadTimeout(""), "timeout.read"),
    ("write-timeout", httpx.WriteTimeout(""), "timeout.write"),
    ("pool-timeout", httpx.PoolTimeout(""), "timeout.connect"),
    (
        "too-many-redirects",
        httpx.TooManyRedirects("Exceeded maximum allowed redirects."),
        "server.redirects",
    ),
    (
        "probe-failure",
        ProbeFailure(Reason.SERVER_LIVE_STALLED, "stalled"),
        "server.live_stalled",
    ),
    (
        "probe-failure-wrapped",
        wrapped(RuntimeError("outer"), ProbeFailure(Reason.DNS_NO_ADDRESS, "none"), "cause"),
        "dns.no_address",
    ),
]


@pytest.mark.parametrize(("exc", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_exception(exc: BaseException, reason: str | None) -> None:
    found = classify_exception(exc)
    if reason is None:  # a ConnectError with no root: still network, never a crash
        assert found is not None and found.failure is Failure.NETWORK
        return
    assert found is not None
    assert found.reason == reason
    assert found.failure.value == reason.split(".")[0]
    assert found.error


def test_bug_is_not_disguised_as_outage() -> None:
    assert classify_exception(KeyError("oops")) is None
    assert classify_exception(TypeError("bad")) is None


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (Step.DNS, "dns.timeout"),
        (Step.CONNECT, "timeout.connect"),
        (Step.TLS, "timeout.connect"),
        (Step.SEND, "timeout.write"),
        (Step.SEND_BODY, "timeout.write"),
        (Step.WAIT, "timeout.read"),
        (Step.BODY, "timeout.total"),
        (None, "timeout.total"),
        (KindStep("reply", Reason.TIMEOUT_READ, "no reply within {t}"), "timeout.read"),
    ],
    ids=str,
)
def test_deadline_is_labelled_by_the_step_it_cut(step: Step | KindStep | None, reason: str) -> None:
    found = classify_deadline(step, 5.0)
    assert found.reason == reason
    assert "5s" in found.error


def test_chain_walk_visits_each_once_even_with_cycles() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert [str(e) for e in exception_chain(a)] == ["a", "b"]


def test_every_shared_step_has_a_deadline_reason() -> None:
    # a Step added without an entry would raise KeyError at the worst moment: mid-outage
    for step in Step:
        assert classify_deadline(step, 1).reason.failure in (Failure.DNS, Failure.TIMEOUT)


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_reason_names_a_failure_class(reason: Reason) -> None:
    assert reason.failure.value == reason.value.split(".")[0]
    assert Classified(reason, "x").failure is reason.failure


def test_no_kind_step_calls_a_deadline_a_network_fault() -> None:
    # a deadline is ours: it may mean "too slow" (timeout) or "answered wrong" (a TCP
    # reply that never matched: server.reply), never that the network broke
    for info in KINDS.values():
        for step in info.steps:
            assert step.timeout_reason.failure is not Failure.NETWORK, info.name
            assert "{t}" in step.timeout_text
