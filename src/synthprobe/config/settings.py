"""The ``settings:`` block, and what a probe shares with it: alert rules, maintenance
windows, controls, resolvers, notify URLs. One table per block (``config/readers.py``)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import (
    Field,
    Reader,
    Table,
    each,
    each_string,
    integer,
    list_of,
    raw,
    request_headers,
)
from synthprobe.models import AlertRule, MaintenanceWindow, Otlp, Weekday
from synthprobe.probers import KINDS
from synthprobe.units import parse_utc


def read_settings(r: Reader, loc: Located) -> dict[str, Any]:
    block = SETTINGS_FIELDS.read(r, loc, "settings")
    block.done()
    return block.fields()


def _nonempty(r: Reader, loc: Located, path: str) -> str:
    value = r.text(loc, path)
    if not value:
        fail(loc, path, "must not be empty")
    return value


def _notify_urls(r: Reader, loc: Located, path: str) -> tuple[str, ...]:
    """Apprise URLs (``json://``, ``mailto://``, ``slack://``...), each loaded by Apprise
    itself now: a URL it cannot use (an unknown scheme, a malformed address) is a config
    error with Apprise's own reason, not a warning at the first outage."""
    from synthprobe.notify import load

    def check(url: str, item: Located, where: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme or not rest or any(c.isspace() for c in url):
            fail(item, where, "expected an Apprise URL such as json://host/path or mailto://...")
        loaded = load(url)
        if loaded.plugin is None:
            # the reason is Apprise's; load_configs masks ${VAR} secrets in it
            fail(item, where, f"Apprise cannot use {loaded.shown}: {loaded.problem}")
        return url

    return each_string(r, loc, path, check)


def read_alert(r: Reader, loc: Located, path: str) -> AlertRule:
    block = ALERT_FIELDS.read(r, loc, path)
    block.done()
    return AlertRule(**block.fields())


def _windows(r: Reader, loc: Located, path: str) -> tuple[MaintenanceWindow, ...]:
    return each(list_of(loc, path), path, lambda item, where: _window(r, item, where))


def _weekdays(r: Reader, loc: Located, path: str) -> tuple[Weekday, ...]:
    return each_string(r, loc, path, _weekday)


def _weekday(name: str, item: Located, where: str) -> Weekday:
    try:
        return Weekday[name.strip().upper()]
    except KeyError:
        fail(item, where, f'unknown weekday "{name}": expected monday ... sunday')


def _zone(r: Reader, loc: Located, path: str) -> str:
    zone = r.text(loc, path)
    if not _known_zone(zone):
        fail(loc, path, f'unknown timezone "{zone}" (an IANA name such as Europe/Paris)')
    return zone


def _week_at_most(r: Reader, loc: Located, path: str) -> float:
    duration = r.duration(loc, path)
    if duration > 7 * 86400:
        fail(loc, path, "must be at most 7 days")
    return duration


def _window(r: Reader, loc: Located, path: str) -> MaintenanceWindow:
    """One-off (start and end, ISO 8601) or recurring (every, start as a time of day,
    duration); the table reads each key, the two shapes are checked here."""
    block = WINDOW_FIELDS.read(r, loc, path)
    given = block.given
    if "every" not in given:
        for key in ("start", "end"):
            if key not in given:
                fail(loc, path, f'missing "{key}": a one-off window has start and end (ISO 8601)')
        start = block.check(_instant, r, given["start"], f"{path}.start")
        end = block.check(_instant, r, given["end"], f"{path}.end")
        if start is not None and end is not None and end <= start:
            block.add(given["end"], f"{path}.end", "must be after start")
        for key in ("duration", "timezone"):
            if key in given:
                block.add(given[key], f"{path}.{key}", "only for a recurring window (with every)")
        block.done()
        return MaintenanceWindow(**block.fields(), start=start, end=end)
    for key in ("start", "duration"):
        if key not in given:
            fail(loc, path, f'missing "{key}": a recurring window has every, start and duration')
    if "end" in given:
        block.add(given["end"], f"{path}.end", "a recurring window has a duration, not an end")
    at = block.check(_time_of_day, r, given["start"], f"{path}.start")
    block.done()
    assert at is not None
    return MaintenanceWindow(**block.fields(), at=at)


def _time_of_day(r: Reader, loc: Located, path: str) -> tuple[int, int]:
    text = r.text(loc, path, allow_scalar=True)
    hm = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if hm is None:
        fail(loc, path, f"expected a time of day such as 03:00, got {text!r}")
    return int(hm.group(1)), int(hm.group(2))


def _instant(r: Reader, loc: Located, path: str) -> float:
    value = loc.value
    if not isinstance(value, str):
        # YAML reads an unquoted 2026-12-01T02:00:00Z as a datetime: take it as written
        value = value.isoformat() if hasattr(value, "isoformat") else value
    text = r.text(Located(value, loc.line), path)
    try:
        return parse_utc(text)
    except ValueError:
        fail(loc, path, f"expected a time such as 2026-12-01T02:00:00Z, got {text!r}")


def _known_zone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
        return False
    return True


def _controls(r: Reader, loc: Located, path: str) -> tuple[str, ...]:
    """``https://...`` (or http), ``dns:NAME`` or ``tcp:HOST:PORT``."""
    return each_string(r, loc, path, _control)


def _control(control: str, item: Located, where: str) -> str:
    problem = _control_problem(control)
    if problem:
        fail(item, where, f"bad control {control!r}: {problem}")
    return control


def _control_problem(control: str) -> str | None:
    if any(c.isspace() for c in control):
        return "contains white space"
    forms = [info.control for info in KINDS.values() if info.control is not None]
    for form in forms:
        if control.startswith(form.prefix):
            return (
                None if form.check(control.removeprefix(form.prefix)) else f"expected {form.usage}"
            )
    parts = urlsplit(control)
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    return f"expected an http(s) URL, {' or '.join(sorted(f.usage for f in forms))}"


def read_resolver(r: Reader, loc: Located, path: str) -> tuple[str, int]:
    """``ADDRESS[:PORT]`` (``[v6]:PORT`` for IPv6): a DNS server by address, not by name
    (a name would need a resolver of its own)."""
    text = r.text(loc, path, allow_scalar=True).strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9A-Fa-f:]+)", text)
    address = port = None
    if m:
        address = m.group(1) or m.group(3) or m.group(5)
        port = m.group(2) or m.group(4)
    try:
        ipaddress.ip_address(address or "")
    except ValueError:
        fail(
            loc,
            path,
            f"bad resolver {text!r}: an IP address with an optional port, e.g. 127.0.0.1:5353",
        )
    number = int(port) if port else 53
    if not 1 <= number <= 65535:
        fail(loc, path, f"bad resolver {text!r}: port must be 1 to 65535")
    assert address is not None
    return address, number


def _otlp_endpoint(r: Reader, loc: Located, path: str) -> str:
    from synthprobe.tracing import endpoint_problem

    url = r.text(loc, path)
    problem = endpoint_problem(url)
    if problem:
        fail(loc, path, problem)
    return url


def _otlp(r: Reader, loc: Located, path: str) -> Otlp:
    """``settings.otlp``: ``{endpoint: URL, headers: {...}}`` (docs/tracing.md)."""
    block = OTLP_FIELDS.read(r, loc, path)
    block.done()
    return Otlp(**block.fields())


_count = integer(1, 10_000)

OTLP_FIELDS = Table(
    Field("endpoint", _otlp_endpoint, required=True),
    Field("headers", request_headers),
)

ALERT_FIELDS = Table(
    Field("failure_threshold", _count),
    Field("success_threshold", _count),
    Field("remind_every", Reader.duration),
    Field("send_resolved", Reader.boolean),
    Field("notify", _notify_urls),
)

WINDOW_FIELDS = Table(
    Field("start", raw, attr=None),  # an instant or a time of day: _window decides
    Field("end", raw, attr=None),
    Field("every", _weekdays),
    Field("duration", _week_at_most),
    Field("timezone", _zone),
    Field("only", Reader.strings),
)

SETTINGS_FIELDS = Table(
    Field("concurrency", integer(1, 100_000)),
    Field("output", _nonempty),
    Field("location", _nonempty),
    Field("junit", _nonempty),
    Field("prom", _nonempty),
    Field("public_vars", raw, attr=None),  # read first, by _public_vars: it changes expansion
    Field("env_proxy", Reader.boolean),
    Field("state", _nonempty),
    Field("notify", _notify_urls),
    Field("status_url", _nonempty),
    Field("maintenance", _windows),
    Field("resolver", read_resolver),
    Field("controls", _controls),
    Field("otlp", _otlp),
)
