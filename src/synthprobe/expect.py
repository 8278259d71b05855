"""The judge: what a prober observed, checked against an ``Expectation``.

Each kind declares what it observes (``Observes``, in its ``KindInfo``); its prober
returns that observation; ``judge`` checks it. Pure but for two clocks it reads:
``max_age`` and ``cert_min_days`` compare with the time now, and a pattern's search
runs under a time budget (patterns.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from synthprobe.classify import Classified, ProbeFailure
from synthprobe.jsonpath import MISSING, resolve_path
from synthprobe.models import AnswerCheck, Expectation, JsonCheck, Reason
from synthprobe.observes import Observes
from synthprobe.patterns import BUDGET, Pattern
from synthprobe.units import format_size, format_span

if TYPE_CHECKING:
    import regex


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response, as a prober saw it."""

    status: int
    """HTTP status."""
    headers: tuple[tuple[str, str], ...]
    """Response headers, names lower-cased, in order."""
    body: bytes
    """The first ``max_body`` bytes of the decoded body."""
    truncated: bool = False
    """True when the body was longer than ``max_body`` and reading stopped."""
    undecoded: str | None = None
    """A Content-Encoding synthprobe cannot decode: the body is as it came."""


@dataclass(frozen=True, slots=True)
class Segments:
    """A live stream: its playlist (or MPD) response; the segments were checked as
    they were fetched (a failed one ended the attempt)."""

    playlist: Response


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply the kind's own block matched (tcp, messaging); an empty one when the
    probe only connects."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class Answers:
    """A DNS answer's records, as text, for ``expect.answers``."""

    question: str
    """``NAME TYPE``: what the error message says was asked."""
    records: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Walked:
    """A journey's steps, each judged as it ended by this same judge (against its own
    expectations and its own total): nothing is left but the certificate."""


Observation = Response | Segments | Reply | Answers | Walked
"""What a prober returns for the judge: one type per ``Observes``, and ``Walked``."""

OBSERVED: dict[Observes, tuple[type[Observation], ...]] = {
    Observes.RESPONSE: (Response, Walked),
    Observes.SEGMENTS: (Segments,),
    Observes.REPLY: (Reply,),
    Observes.ANSWERS: (Answers,),
}
"""The observations a prober of each declaration may return (a journey's is
``Walked``): the runner holds a prober to its kind's word."""


def judge(
    expect: Expectation,
    observation: Observation,
    latency_s: float | None,
    cert_not_after: float | None = None,
) -> Classified | None:
    """The one judge: every kind's result (and each journey step) is checked here
    against its expectations, and only here. The first that fails, or None.

    Order matters, because a probe reports one reason: a wrong status explains the
    rest, then content, then latency (a slow but wrong answer is wrong first), then
    the certificate. ``latency_s`` is the total the result reports; None when the
    caller only asks whether the response is right so far (an upload before its
    verification)."""
    failed: Classified | None = None
    match observation:
        case Response():
            failed = check(expect, observation)
        case Segments(playlist):
            failed = check(expect, playlist)
        case Answers(question, records):
            if expect.answers is not None:
                problem = check_answers(expect.answers, records)
                if problem:
                    failed = Classified(Reason.DNS_ANSWER, f"{question}: {problem}")
        case Reply():
            pass  # matched by the kind's own block before the prober returned
        case Walked():
            return check_certificate(expect.cert_min_days, cert_not_after)
        case _:
            assert_never(observation)
    if failed is None and latency_s is not None:
        failed = check_latency(expect.max_latency, latency_s)
    return failed or check_certificate(expect.cert_min_days, cert_not_after)


class ReplyRule(Protocol):
    """A kind's block that matches replies (``tcp``, ``messaging``): text the reply must
    contain, a pattern it must match, or both."""

    @property
    def expect(self) -> str | None: ...

    @property
    def expect_regex(self) -> str | None: ...


def reply_matches(reply: str, rule: ReplyRule) -> bool:
    """Whether a reply passes the kind's block: the one reply matcher."""
    if rule.expect is not None and rule.expect not in reply:
        return False
    # a user's pattern on the server's bytes: time-budgeted, so it cannot hold the loop
    return rule.expect_regex is None or search(rule.expect_regex, reply, "the reply")


def reply_wanted(rule: ReplyRule) -> str:
    """What the block asks of a reply, for an error message."""
    parts = []
    if rule.expect is not None:
        parts.append(f"contain {rule.expect!r}")
    if rule.expect_regex is not None:
        parts.append(f"match /{rule.expect_regex}/")
    return " and ".join(parts)


def check_latency(max_latency: float | None, latency_s: float) -> Classified | None:
    """``expect.max_latency``: slower fails as ``server.slow``."""
    if max_latency is None or latency_s <= max_latency:
        return None
    return Classified(
        Reason.SERVER_SLOW,
        f"took {latency_s * 1000:.0f}ms, max_latency is {max_latency * 1000:.0f}ms",
    )


def status_matches(status: int, accepted: tuple[int | str, ...]) -> bool:
    for want in accepted:
        if isinstance(want, int) and status == want:
            return True
        if isinstance(want, str) and want[0] == str(status)[0]:
            return True
    return False


def _assertion(message: str, obs: Response) -> Classified:
    if obs.truncated:
        message += f" (only the first {format_size(len(obs.body))} of the body were read)"
    return Classified(Reason.SERVER_ASSERTION, message)


def check(expect: Expectation, obs: Response) -> Classified | None:
    """None when the response passes its status, header and content checks; otherwise
    the first that fails. Latency and the certificate are ``judge``'s."""
    if not status_matches(obs.status, expect.status):
        wanted = ", ".join(str(s) for s in expect.status)
        return Classified(Reason.SERVER_STATUS, f"status {obs.status}, expected {wanted}")
    for name, pattern in expect.headers:
        values = [v for k, v in obs.headers if k == name.lower()]
        if not values:
            return _assertion(f"header {name} missing", obs)
        if not any(search(pattern, v, f"header {name}") for v in values):
            return _assertion(f"header {name} {values[0][:80]!r} does not match /{pattern}/", obs)
    reads_body = expect.body_contains is not None or expect.body_regex is not None
    if (reads_body or expect.json) and obs.undecoded:
        return Classified(
            Reason.NETWORK_PROTOCOL,
            f"body sent with Content-Encoding: {obs.undecoded}, which synthprobe cannot decode",
        )
    if expect.body_contains is not None or expect.body_regex is not None or expect.json:
        text = obs.body.decode("utf-8", errors="replace")
        if text.startswith("\ufeff"):
            text = text[1:]  # a UTF-8 BOM: legal before JSON (RFC 8259 8.1 lets parsers skip it)
        if expect.body_contains is not None and expect.body_contains not in text:
            return _assertion(f"body does not contain {expect.body_contains!r}", obs)
        if expect.body_regex is not None and not search(expect.body_regex, text, "the body"):
            return _assertion(f"body does not match /{expect.body_regex}/", obs)
        if expect.json:
            try:
                document = json.loads(text)
            except RecursionError:
                return _assertion("body is JSON nested too deep to read (over ~900 levels)", obs)
            except ValueError as exc:
                if "integer string conversion" in str(exc):
                    # Python's own advice (set_int_max_str_digits) is not the user's to act on
                    return _assertion(
                        f"body has a JSON number of more than {_INT_DIGITS} digits", obs
                    )
                return _assertion(f"body is not JSON: {exc}", obs)
            for json_check in expect.json:
                problem = check_json(json_check, document)
                if problem:
                    return _assertion(problem, obs)
                if json_check.max_age is not None:
                    stale = check_age(json_check, document, time.time())
                    if stale is not None:
                        return stale
    return None


def check_json(c: JsonCheck, document: Any) -> str | None:
    """A message when the check fails, else None."""
    value = resolve_path(document, c.path)
    found = value is not MISSING
    if c.exists is not None and found != c.exists:
        return f"json {c.path}: {'not found' if c.exists else 'exists, expected absent'}"
    if not found:
        if c.has_equals or c.min_items is not None or c.max_items is not None or c.matches:
            return f"json {c.path}: not found"
        return None
    if c.has_equals and not _same(value, c.equals):
        return f"json {c.path}: {_short(value)}, expected {_short(c.equals)}"
    if c.min_items is not None or c.max_items is not None:
        if not isinstance(value, list | dict):
            return f"json {c.path}: {_short(value)} is not a list"
        if c.min_items is not None and len(value) < c.min_items:
            return f"json {c.path}: {len(value)} items, expected at least {c.min_items}"
        if c.max_items is not None and len(value) > c.max_items:
            return f"json {c.path}: {len(value)} items, expected at most {c.max_items}"
    if c.matches is not None:
        text = value if isinstance(value, str) else _dumps(value)
        if not search(c.matches, text, f"json {c.path}"):
            return f"json {c.path}: {_short(value)} does not match /{c.matches}/"
    return None


MAX_EPOCH = 253402300800.0
"""Seconds of 10000-01-01T00:00:00Z: past the last date Python (and ISO 8601) can write."""
_INT_DIGITS = sys.get_int_max_str_digits() or 4300
EPOCH_MS_ABOVE = 1e11
"""A number above this is epoch milliseconds (1e11 seconds is the year 5138)."""
FUTURE_SLACK = 60.0
"""A time up to this far ahead is clock skew; further is an error, never "fresh"."""


def as_time(value: Any) -> float | None:
    """An ISO 8601 time with a zone, epoch seconds, or epoch milliseconds -> epoch s."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            seconds = float(value) / 1000 if value > EPOCH_MS_ABOVE else float(value)
        except OverflowError:  # an integer beyond any float: no time
            return None
        # Infinity, NaN and 1e400 (JSON has them in practice) are no time either; nor is
        # anything outside what a date can be, which would overflow the age's arithmetic
        return seconds if math.isfinite(seconds) and abs(seconds) < MAX_EPOCH else None
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            return None
        try:
            return stamp.timestamp()
        except (OverflowError, ValueError, OSError):  # year 1 at +14:00 is before year 1
            return None
    return None


def check_age(c: JsonCheck, document: Any, now: float) -> Classified | None:
    """``max_age``: the time at the path must be recent (``server.stale``)."""
    assert c.max_age is not None
    value = resolve_path(document, c.path)
    if value is MISSING:
        return Classified(Reason.SERVER_ASSERTION, f"json {c.path}: not found")
    when = as_time(value)
    if when is None:
        return Classified(
            Reason.SERVER_ASSERTION,
            f"json {c.path}: {_short(value)} is not a time (ISO 8601 with a zone, or epoch)",
        )
    age = now - when
    if age < -FUTURE_SLACK:
        return Classified(
            Reason.SERVER_ASSERTION,
            f"json {c.path}: {_short(value)} is {format_span(-age)} in the future",
        )
    if age > c.max_age:
        return Classified(
            Reason.SERVER_STALE,
            f"{c.path} is {format_span(age)} old, expected under {format_span(c.max_age)}",
            {"newest_age_s": round(age, 3)},
        )
    return None


def _same(value: Any, wanted: Any) -> bool:
    # YAML `equals: 1` must not pass for JSON `true` (Python's True == 1)
    if isinstance(value, bool) or isinstance(wanted, bool):
        return type(value) is type(wanted) and value == wanted
    return bool(value == wanted)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):  # nesting at the limit, or a huge integer
        return f"<{type(value).__name__}>"


def _short(value: Any) -> str:
    text = _dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_certificate(min_days: float | None, not_after: float | None) -> Classified | None:
    """``expect.cert_min_days``: the certificate must outlive the next ``min_days`` days.

    Without a verified certificate (plain http, ``verify_tls: false``) there is nothing
    to check; that is not a failure.
    """
    if min_days is None or not_after is None:
        return None
    days = (not_after - time.time()) / 86400
    if days >= min_days:
        return None
    return Classified(
        Reason.SERVER_CERT_EXPIRING,
        f"certificate expires in {days:.1f} days (cert_min_days {min_days:g})",
    )


NAMED_ANSWERS = 10
"""DNS answers an error message names."""


def _answer(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def shown_answers(answers: tuple[str, ...]) -> str:
    """The answers for an error message: the first few, each shortened."""
    text = ", ".join(_answer(a) for a in answers[:NAMED_ANSWERS])
    more = f" and {len(answers) - NAMED_ANSWERS:,} more" if len(answers) > NAMED_ANSWERS else ""
    return f"[{text}{more}]"


def check_answers(check: AnswerCheck, answers: tuple[str, ...]) -> str | None:
    """What is wrong with a DNS answer's records (``expect.answers``), or None."""
    normal = {a.rstrip(".").strip('"').lower() for a in answers}
    for wanted in check.contains:
        if wanted.rstrip(".").strip('"').lower() not in normal:
            return f"{wanted} not among the answers {shown_answers(answers)}"
    if check.min is not None and len(answers) < check.min:
        return f"{len(answers)} answers, expected at least {check.min}"
    if check.matches is not None and not any(
        search(check.matches, a, "a DNS answer") for a in answers
    ):
        return f"no answer matches /{check.matches}/: {shown_answers(answers)}"
    return None


def find(pattern: str, text: str, what: str = "the reply") -> regex.Match[str] | None:
    """The first match of ``pattern`` in ``text`` (its groups: a capture needs them),
    within ``patterns.BUDGET`` seconds.

    ``pattern`` is a ``Pattern`` the config compiled at load; a plain str (a spec built
    in code, as tests do) is compiled here. Typed ``str`` because the reply rule's
    protocol (``expect.ReplyRule``) declares its pattern so."""
    compiled = pattern.compiled if isinstance(pattern, Pattern) else Pattern(pattern).compiled
    try:
        return compiled.search(text, timeout=BUDGET)
    except TimeoutError:
        raise ProbeFailure(
            Reason.SERVER_ASSERTION,
            f"/{pattern}/ gave up after {BUDGET:g}s on {len(text):,} characters of {what} "
            "(the pattern backtracks too much on this text)",
        ) from None


def search(pattern: str, text: str, what: str = "the reply") -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, within ``patterns.BUDGET`` seconds."""
    return find(pattern, text, what) is not None
