"""The probe schema: what a config may say, read into frozen ``ProbeSpec``s.

Every problem is reported as ``FILE:LINE: FIELD: message``, and every problem of a
file is reported, not just the first. Kinds read their own blocks (``upload:``,
``live:``...) through their ``KindInfo``: nothing here knows a kind by name.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from synthprobe.config.nodes import Located, Problem, fail, format_problem, parse_yaml, read_source
from synthprobe.config.readers import TOKEN_RE, Reader, check_url, list_of, mapping, type_name
from synthprobe.config.variables import VAR_NAME_RE, Expander
from synthprobe.errors import ConfigError
from synthprobe.jsonpath import parse_json_path
from synthprobe.models import (
    TARGET_FAILURES,
    AlertRule,
    AnswerCheck,
    Capture,
    Expectation,
    Failure,
    HttpVersion,
    Journey,
    JourneyStep,
    JsonCheck,
    MaintenanceWindow,
    ProbeSpec,
    Weekday,
)
from synthprobe.probers import DEFAULT_KIND, KINDS
from synthprobe.redact import Redactor
from synthprobe.units import parse_utc

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")

BLOCKS = {info.block: name for name, info in KINDS.items() if info.block is not None}
"""Kind blocks (``live:``) -> the kind that owns each."""
PROBE_KEYS = {
    "name",
    "kind",
    "url",
    "method",
    "headers",
    "timeout",
    "retries",
    "retry_on",
    "tags",
    "expect",
    "follow_redirects",
    "verify_tls",
    "max_body",
    "ip_version",
    "http_version",
    "resolver",
    "alert",
    "json",
    "body",
    "capture",
    "mask",
    "steps",
    "step_name",
    *BLOCKS,
}
JOURNEY_KEYS = {"capture", "mask", "steps", "step_name"}
DEFAULT_KEYS = PROBE_KEYS - {"name", "url", "json", "body"} - JOURNEY_KEYS
STEP_KEYS = {
    "name",
    "method",
    "url",
    "headers",
    "json",
    "body",
    "expect",
    "capture",
    "follow_redirects",
    "max_body",
}
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CAPTURE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOP_KEYS = {"version", "settings", "defaults", "probes"}
SETTINGS_KEYS = {
    "concurrency",
    "output",
    "location",
    "junit",
    "prom",
    "public_vars",
    "env_proxy",
    "state",
    "notify",
    "status_url",
    "maintenance",
    "resolver",
    "controls",
}
ALERT_KEYS = {"failure_threshold", "success_threshold", "remind_every", "send_resolved", "notify"}
WINDOW_KEYS = {"start", "end", "every", "duration", "timezone", "only"}
EXPECT_KEYS = {
    "status",
    "max_latency",
    "body_contains",
    "body_regex",
    "headers",
    "json",
    "cert_min_days",
    "answers",
}
ANSWER_KEYS = {"contains", "min", "matches"}
JSON_CHECK_KEYS = {"path", "exists", "equals", "min_items", "max_items", "matches", "max_age"}
MERGED_BLOCKS = ("headers", "expect", "alert", *BLOCKS)
"""Blocks merged key by key under each probe; every other default is replaced whole."""
_EXPECT = Expectation()
_SPEC = ProbeSpec(name="", kind=DEFAULT_KIND, url="", method="GET")
"""The dataclass's defaults: the one place they are written."""


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """Everything the configs say, merged across files."""

    probes: tuple[ProbeSpec, ...]
    """Probes in file order."""
    settings: dict[str, Any]
    """Only the settings the files set: the CLI merges its own on top."""
    secrets: frozenset[str]
    """Values that came from the environment: masked in every output."""
    files: tuple[str, ...]
    """Display names of the files read."""


def load_configs(
    paths: Iterable[str],
    env: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load, validate and merge config files (``-`` is stdin).

    Raises ConfigError listing every problem found.
    """
    return load_sources((read_source(p) for p in paths), env, variables)


def load_sources(
    sources: Iterable[tuple[str, bytes]],
    env: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Like ``load_configs`` for (display name, raw bytes) pairs.

    ``variables`` are extra, non-secret values for ``${...}`` (the demo uses this).
    """
    environ = dict(os.environ if env is None else env)
    public: set[str] = set()
    if variables:
        environ.update(variables)
        public.update(variables)
    problems: list[str] = []
    probes: list[ProbeSpec] = []
    settings: dict[str, Any] = {}
    secrets: set[str] = set()
    seen: dict[str, str] = {}
    files: list[str] = []
    for name, raw in sources:
        files.append(name)
        root = parse_yaml(name, raw)
        expander = Expander(environ, frozenset(public))
        file_probes, file_settings, file_problems = _load_file(name, root, expander)
        problems.extend(file_problems)
        secrets |= expander.secrets
        settings.update(file_settings)
        for spec in file_probes:
            if spec.name in seen:
                problems.append(
                    f"{spec.source}: probes.name: duplicate probe name "
                    f'"{spec.name}" (first defined at {seen[spec.name]})'
                )
                continue
            seen[spec.name] = spec.source
            probes.append(spec)
    if problems:
        # a bad value may have come from the environment: mask it in the message too
        mask = Redactor(secrets)
        raise ConfigError([mask.text(p) for p in problems])
    return LoadedConfig(tuple(probes), settings, frozenset(secrets), tuple(files))


def _load_file(
    name: str, root: Located, expander: Expander
) -> tuple[list[ProbeSpec], dict[str, Any], list[str]]:
    problems: list[str] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Problem as p:
            problems.append(format_problem(name, p))
            return None

    top = attempt(lambda: mapping(root, "", TOP_KEYS))
    if top is None:
        return [], {}, problems
    if "version" in top:
        attempt(lambda: _check_version(top["version"]))
    settings_loc = top.get("settings")
    if settings_loc is not None:
        public = attempt(lambda: _public_vars(settings_loc))
        if public:
            expander.public = expander.public | public
    reader = Reader(expander)
    settings: dict[str, Any] = {}
    if settings_loc is not None:
        settings = attempt(lambda: _settings(reader, settings_loc)) or {}
    defaults: dict[str, Located] = {}
    if "defaults" in top:
        defaults = attempt(lambda: mapping(top["defaults"], "defaults", DEFAULT_KEYS)) or {}
    if "probes" not in top:
        problems.append(f"{name}:{root.line}: probes: missing: a config needs a list of probes")
        return [], settings, problems
    items = attempt(lambda: list_of(top["probes"], "probes"))
    if items is not None and not items:
        problems.append(f"{name}:{top['probes'].line}: probes: the list is empty")
    probes: list[ProbeSpec] = []
    share = Sharer()
    items = items or []
    for i in range(len(items)):
        # a probe's tree goes once it is a ProbeSpec: 100,000 probes never hold both
        item, items[i] = items[i], _SPENT
        try:
            probes.append(_probe(reader, name, item, f"probes[{i}]", defaults, share))
        except Problem as p:
            problems.append(format_problem(name, p))
    return probes, settings, problems


_SPENT = Located(None, 0)
T = TypeVar("T")


class Sharer:
    """One object for equal frozen values: 100,000 probes with the defaults' ``expect``
    hold one ``Expectation``, not 100,000 (they are never mutated: all frozen)."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}

    def __call__(self, value: T) -> T:
        try:
            return cast(T, self._seen.setdefault(value, value))
        except TypeError:  # unhashable inside (a JSON check's ``equals`` list)
            return value


def _check_version(loc: Located) -> None:
    if loc.value != 1:
        fail(loc, "version", f"unsupported version {loc.value!r}: this synthprobe reads 1")


def _public_vars(loc: Located) -> frozenset[str]:
    if not isinstance(loc.value, dict) or "public_vars" not in loc.value:
        return frozenset()
    sub = loc.value["public_vars"]
    names = [sub] if isinstance(sub.value, str) else list_of(sub, "settings.public_vars")
    out = set()
    for i, item in enumerate(names):
        if not isinstance(item.value, str) or not VAR_NAME_RE.match(item.value):
            fail(item, f"settings.public_vars[{i}]", "expected a variable name")
        out.add(item.value)
    return frozenset(out)


def _settings(r: Reader, loc: Located) -> dict[str, Any]:
    m = mapping(loc, "settings", SETTINGS_KEYS)
    out: dict[str, Any] = {}
    if "concurrency" in m:
        out["concurrency"] = r.integer(m["concurrency"], "settings.concurrency", 1, 100_000)
    if "env_proxy" in m:
        out["env_proxy"] = r.boolean(m["env_proxy"], "settings.env_proxy")
    for key in ("output", "location", "junit", "prom", "state", "status_url"):
        if key in m:
            value = r.text(m[key], f"settings.{key}")
            if not value:
                fail(m[key], f"settings.{key}", "must not be empty")
            out[key] = value
    if "notify" in m:
        out["notify"] = _notify_urls(r, m["notify"], "settings.notify")
    if "resolver" in m:
        out["resolver"] = _resolver(r, m["resolver"], "settings.resolver")
    if "controls" in m:
        out["controls"] = _controls(r, m["controls"], "settings.controls")
    if "maintenance" in m:
        windows = list_of(m["maintenance"], "settings.maintenance")
        out["maintenance"] = tuple(
            _window(r, w, f"settings.maintenance[{i}]") for i, w in enumerate(windows)
        )
    return out


def _notify_urls(r: Reader, loc: Located, path: str) -> tuple[str, ...]:
    """Apprise URLs (``json://``, ``mailto://``, ``slack://``...), each loaded by Apprise
    itself now: a URL it cannot use (an unknown scheme, a malformed address) is a config
    error with Apprise's own reason, not a warning at the first outage."""
    from synthprobe.notify import load

    urls = r.strings(loc, path)
    for i, url in enumerate(urls):
        item = loc.value[i] if isinstance(loc.value, list) else loc
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme or not rest or any(c.isspace() for c in url):
            fail(
                item,
                f"{path}[{i}]",
                "expected an Apprise URL such as json://host/path or mailto://...",
            )
        loaded = load(url)
        if loaded.plugin is None:
            # the reason is Apprise's; load_configs masks ${VAR} secrets in it
            fail(item, f"{path}[{i}]", f"Apprise cannot use {loaded.shown}: {loaded.problem}")
    return urls


def _alert(r: Reader, loc: Located, path: str) -> AlertRule:
    m = mapping(loc, path, ALERT_KEYS)
    base = AlertRule()

    def count(key: str, default: int) -> int:
        return r.integer(m[key], f"{path}.{key}", 1, 10_000) if key in m else default

    return AlertRule(
        failure_threshold=count("failure_threshold", base.failure_threshold),
        success_threshold=count("success_threshold", base.success_threshold),
        remind_every=r.duration(m["remind_every"], f"{path}.remind_every")
        if "remind_every" in m
        else None,
        send_resolved=r.boolean(m["send_resolved"], f"{path}.send_resolved")
        if "send_resolved" in m
        else base.send_resolved,
        notify=_notify_urls(r, m["notify"], f"{path}.notify") if "notify" in m else None,
    )


def _window(r: Reader, loc: Located, path: str) -> MaintenanceWindow:
    m = mapping(loc, path, WINDOW_KEYS)
    only = r.strings(m["only"], f"{path}.only") if "only" in m else ()
    if "every" not in m:
        for key in ("start", "end"):
            if key not in m:
                fail(loc, path, f'missing "{key}": a one-off window has start and end (ISO 8601)')
        start, end = _instant(r, m["start"], f"{path}.start"), _instant(r, m["end"], f"{path}.end")
        if end <= start:
            fail(m["end"], f"{path}.end", "must be after start")
        for key in ("duration", "timezone"):
            if key in m:
                fail(m[key], f"{path}.{key}", "only for a recurring window (with every)")
        return MaintenanceWindow(start=start, end=end, only=only)
    days: list[Weekday] = []
    for i, name in enumerate(r.strings(m["every"], f"{path}.every")):
        try:
            days.append(Weekday[name.strip().upper()])
        except KeyError:
            item = m["every"].value[i] if isinstance(m["every"].value, list) else m["every"]
            fail(
                item, f"{path}.every[{i}]", f'unknown weekday "{name}": expected monday ... sunday'
            )
    for key in ("start", "duration"):
        if key not in m:
            fail(loc, path, f'missing "{key}": a recurring window has every, start and duration')
    if "end" in m:
        fail(m["end"], f"{path}.end", "a recurring window has a duration, not an end")
    text = r.text(m["start"], f"{path}.start", allow_scalar=True)
    hm = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if hm is None:
        fail(m["start"], f"{path}.start", f"expected a time of day such as 03:00, got {text!r}")
    zone = r.text(m["timezone"], f"{path}.timezone") if "timezone" in m else "UTC"
    if not _known_zone(zone):
        fail(
            m["timezone"],
            f"{path}.timezone",
            f'unknown timezone "{zone}" (an IANA name such as Europe/Paris)',
        )
    duration = r.duration(m["duration"], f"{path}.duration")
    if duration > 7 * 86400:
        fail(m["duration"], f"{path}.duration", "must be at most 7 days")
    return MaintenanceWindow(
        every=tuple(days),
        at=(int(hm.group(1)), int(hm.group(2))),
        duration=duration,
        timezone=zone,
        only=only,
    )


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
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _merge(defaults: dict[str, Located], probe: dict[str, Located]) -> dict[str, Located]:
    """Defaults under the probe; MERGED_BLOCKS merge key by key (the probe wins)."""
    merged = dict(defaults)
    for key, loc in probe.items():
        base = defaults.get(key)
        if (
            key in MERGED_BLOCKS
            and base is not None
            and isinstance(base.value, dict)
            and isinstance(loc.value, dict)
        ):
            if key == "headers":  # header names are case-insensitive
                lowered = {k.lower() for k in loc.value}
                block = {k: v for k, v in base.value.items() if k.lower() not in lowered}
            else:
                block = dict(base.value)
            block.update(loc.value)
            merged[key] = Located(block, loc.line)
        else:
            merged[key] = loc
    return merged


def _probe(
    r: Reader,
    filename: str,
    item: Located,
    path: str,
    defaults: dict[str, Located],
    share: Sharer,
) -> ProbeSpec:
    own, name = _named(r, item, path, PROBE_KEYS)
    m = _merge(defaults, own)
    kind = r.choice(m["kind"], f"{path}.kind", KINDS, "kind") if "kind" in m else DEFAULT_KIND
    info = KINDS[kind]
    url = r.text(m["url"], f"{path}.url")
    check_url(m["url"], f"{path}.url", url, info.schemes, kind, need_host=info.url_has_host)
    if info.check_url is not None:
        problem = info.check_url(urlsplit(url))
        if problem:
            fail(m["url"], f"{path}.url", f"bad URL {url!r}: {problem}")
    method = info.default_method
    if "method" in m:
        method = r.text(m["method"], f"{path}.method").upper()
        if not TOKEN_RE.match(method):
            fail(m["method"], f"{path}.method", f"bad HTTP method {method!r}")
    timeout = r.duration(m["timeout"], f"{path}.timeout") if "timeout" in m else _SPEC.timeout
    retries = (
        r.integer(m["retries"], f"{path}.retries", 0, 100) if "retries" in m else _SPEC.retries
    )
    retry_on = _SPEC.retry_on
    if "retry_on" in m:
        classes = [Failure(c) for c in _failure_names(r, m["retry_on"], f"{path}.retry_on")]
        retry_on = frozenset(classes)
    headers: tuple[tuple[str, str], ...] = ()
    if "headers" in m:
        headers = _headers(r, m["headers"], f"{path}.headers")
    tags = r.strings(m["tags"], f"{path}.tags") if "tags" in m else ()
    expect = _expect(r, m["expect"], f"{path}.expect") if "expect" in m else Expectation()
    if expect.answers is not None and "answers" not in info.expect_keys:
        where = m["expect"].value.get("answers", m["expect"])
        owners = ", ".join(n for n, i in KINDS.items() if "answers" in i.expect_keys)
        fail(where, f"{path}.expect.answers", f"not for kind {kind} (only for {owners})")
    follow = (
        r.boolean(m["follow_redirects"], f"{path}.follow_redirects")
        if ("follow_redirects" in m)
        else _SPEC.follow_redirects
    )
    verify = (
        r.boolean(m["verify_tls"], f"{path}.verify_tls") if "verify_tls" in m else _SPEC.verify_tls
    )
    max_body = r.size(m["max_body"], f"{path}.max_body") if "max_body" in m else _SPEC.max_body
    ip_version = None
    if "ip_version" in m:
        loc = m["ip_version"]
        text = str(loc.value).lower() if not isinstance(loc.value, bool) else ""
        if text not in ("4", "6", "auto"):
            fail(loc, f"{path}.ip_version", f"expected 4, 6 or auto, got {type_name(loc.value)}")
        ip_version = None if text == "auto" else int(text)
    http_version = _SPEC.http_version
    if "http_version" in m:
        if "http_version" in own and not info.negotiates_http:
            fail(own["http_version"], f"{path}.http_version", f"not for kind {kind}")
        if info.negotiates_http:
            http_version = _http_version(m["http_version"], f"{path}.http_version", url)
    alert = _alert(r, m["alert"], f"{path}.alert") if "alert" in m else _SPEC.alert
    body, json_body = _body(r, m, path)
    if body is not None and not info.request_body:
        key = "json" if json_body else "body"
        fail(m[key], f"{path}.{key}", f"not for kind {kind}: it sends its own request body")
    journey = None
    if any(k in own for k in JOURNEY_KEYS):
        if not info.journeys:
            key = next(k for k in JOURNEY_KEYS if k in own)
            fail(own[key], f"{path}.{key}", f"not for kind {kind}: steps are for HTTP requests")
        journey = _journey(r, m, path, headers, follow, max_body, url, body)
    resolver = _resolver(r, m["resolver"], f"{path}.resolver") if "resolver" in m else None
    for key, owner in BLOCKS.items():
        if key in m and owner != kind and key in own:
            fail(m[key], f"{path}.{key}", f"only for kind {owner}, not {kind}")
    options = None
    if info.parse_block is not None:
        assert info.block is not None
        options = info.parse_block(r, m.get(info.block), f"{path}.{info.block}", item)
    return ProbeSpec(
        name=name,
        kind=kind,
        url=url,
        method=method,
        timeout=share(timeout),
        retries=retries,
        retry_on=retry_on,
        headers=share(headers),
        tags=share(tags),
        expect=share(expect),
        follow_redirects=follow,
        verify_tls=verify,
        max_body=max_body,
        ip_version=ip_version,
        http_version=http_version,
        alert=alert,
        body=body,
        json_body=json_body,
        journey=journey,
        resolver=resolver,
        options=options,
        source=f"{filename}:{item.line}",
    )


def _body(r: Reader, m: dict[str, Located], path: str) -> tuple[str | None, bool]:
    """``json:`` (any YAML value, sent as JSON) or ``body:`` (text); not both."""
    if "json" in m and "body" in m:
        fail(m["body"], f"{path}.body", "give json or body, not both")
    if "json" in m:
        return json.dumps(_plain(r, m["json"], f"{path}.json")), True
    if "body" in m:
        return r.text(m["body"], f"{path}.body", allow_scalar=True), False
    return None, False


def _plain(r: Reader, loc: Located, path: str) -> Any:
    """A Located tree back to plain values, ``${VAR}`` expanded in strings."""
    value = loc.value
    if isinstance(value, dict):
        return {k: _plain(r, v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(r, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return r.text(loc, path)
    return value


def _captures(r: Reader, loc: Located, path: str) -> tuple[Capture, ...]:
    m = mapping(loc, path, set(loc.value or {}) if isinstance(loc.value, dict) else set())
    out = []
    for name, sub in m.items():
        where = f"{path}.{name}"
        if not _CAPTURE_NAME_RE.match(name):
            fail(sub, where, "a capture name is letters, digits and _ (it is used as {{name}})")
        text = r.text(sub, where)
        source, sep, arg = text.partition(":")
        if source == "status" and not sep:
            out.append(Capture(name, "status"))
            continue
        if source not in ("json", "header", "regex") or not sep or not arg:
            fail(
                sub,
                where,
                f"bad capture {text!r}: use json:PATH, header:NAME, regex:PATTERN or status",
            )
        if source == "json":
            try:
                parse_json_path(arg)
            except ValueError as exc:
                fail(sub, where, str(exc))
        if source == "regex":
            try:
                re.compile(arg)
            except re.error as exc:
                fail(sub, where, f"bad regex {arg!r}: {exc}")
        out.append(Capture(name, source, arg))
    return tuple(out)


def _uses(*texts: str | None) -> set[str]:
    return {n for t in texts if t for n in _PLACEHOLDER_RE.findall(t)}


def _headers(r: Reader, loc: Located, path: str) -> tuple[tuple[str, str], ...]:
    """Request headers, in order: token names, one-line values (no header injection)."""
    hm = mapping(loc, path, set(loc.value or {}) if isinstance(loc.value, dict) else set())
    pairs = []
    for key, sub in hm.items():
        if not TOKEN_RE.match(key):
            fail(sub, f"{path}.{key}", "bad header name")
        value = r.text(sub, f"{path}.{key}", allow_scalar=True)
        if "\n" in value or "\r" in value:
            fail(sub, f"{path}.{key}", "a header value cannot span lines")
        pairs.append((key, value))
    return tuple(pairs)


def _named(r: Reader, loc: Located, path: str, keys: set[str]) -> tuple[dict[str, Located], str]:
    """A probe's or a step's mapping, with its required name and url, and its name."""
    m = mapping(loc, path, keys)
    for required in ("name", "url"):
        if required not in m:
            fail(loc, path, f'missing required key "{required}"')
    name = r.text(m["name"], f"{path}.name")
    if not _NAME_RE.match(name):
        fail(
            m["name"],
            f"{path}.name",
            f"bad name {name!r}: use letters, digits and . _ : / - (no spaces)",
        )
    return m, name


def _journey(
    r: Reader,
    m: dict[str, Located],
    path: str,
    headers: tuple[tuple[str, str], ...],
    follow: bool,
    max_body: int,
    url: str,
    body: str | None,
) -> Journey:
    main = r.text(m["step_name"], f"{path}.step_name") if "step_name" in m else "main"
    known: set[str] = set()
    early = _uses(url, body, *(v for _, v in headers))
    if early:
        where = m["url"] if _uses(url) else m.get("json") or m.get("body") or m["headers"]
        name = sorted(early)[0]
        fail(where, path, f"{{{{{name}}}}}: no earlier step captures {name}")
    capture = _captures(r, m["capture"], f"{path}.capture") if "capture" in m else ()
    known |= {c.name for c in capture}
    steps: list[JourneyStep] = []
    names = {main}
    for i, item in enumerate(list_of(m["steps"], f"{path}.steps") if "steps" in m else []):
        step = _step(r, item, f"{path}.steps[{i}]", headers, follow, max_body, known)
        if step.name in names:
            fail(item, f"{path}.steps[{i}].name", f'duplicate step name "{step.name}"')
        names.add(step.name)
        known |= {c.name for c in step.capture}
        steps.append(step)
    mask = r.strings(m["mask"], f"{path}.mask") if "mask" in m else ()
    for i, name in enumerate(mask):
        if name not in known:
            item = m["mask"].value[i] if isinstance(m["mask"].value, list) else m["mask"]
            fail(item, f"{path}.mask[{i}]", f"no step captures {name}")
    return Journey(main=main, capture=capture, steps=tuple(steps), mask=mask)


def _step(
    r: Reader,
    loc: Located,
    path: str,
    probe_headers: tuple[tuple[str, str], ...],
    follow: bool,
    max_body: int,
    known: set[str],
) -> JourneyStep:
    m, name = _named(r, loc, path, STEP_KEYS)
    url = r.text(m["url"], f"{path}.url")
    if not _uses(url) or not url.strip().startswith("{{"):
        check_url(m["url"], f"{path}.url", _PLACEHOLDER_RE.sub("x", url), ("http", "https"), "step")
    method = r.text(m["method"], f"{path}.method").upper() if "method" in m else "GET"
    if not TOKEN_RE.match(method):
        fail(m["method"], f"{path}.method", f"bad HTTP method {method!r}")
    headers = dict(probe_headers)  # the probe's headers (defaults included) on every step
    if "headers" in m:
        own = _headers(r, m["headers"], f"{path}.headers")
        lowered = {k.lower() for k, _ in own}
        headers = {k: v for k, v in headers.items() if k.lower() not in lowered}
        headers.update(own)
    body, json_body = _body(r, m, path)
    for key, text in (("url", url), ("headers", " ".join(headers.values())), ("body", body)):
        missing = sorted(_uses(text) - known)
        if missing:
            where = m.get(key) or m.get("json") or loc
            fail(
                where,
                f"{path}.{key}",
                f"{{{{{missing[0]}}}}}: no earlier step captures {missing[0]}",
            )
    return JourneyStep(
        name=name,
        method=method,
        url=url,
        headers=tuple(headers.items()),
        body=body,
        json_body=json_body,
        expect=_expect(r, m["expect"], f"{path}.expect") if "expect" in m else Expectation(),
        capture=_captures(r, m["capture"], f"{path}.capture") if "capture" in m else (),
        follow_redirects=r.boolean(m["follow_redirects"], f"{path}.follow_redirects")
        if "follow_redirects" in m
        else follow,
        max_body=r.size(m["max_body"], f"{path}.max_body") if "max_body" in m else max_body,
    )


def _controls(r: Reader, loc: Located, path: str) -> tuple[str, ...]:
    """``https://...`` (or http), ``dns:NAME`` or ``tcp:HOST:PORT``."""
    controls = r.strings(loc, path)
    for i, control in enumerate(controls):
        item = loc.value[i] if isinstance(loc.value, list) else loc
        problem = _control_problem(control)
        if problem:
            fail(item, f"{path}[{i}]", f"bad control {control!r}: {problem}")
    return controls


def _control_problem(control: str) -> str | None:
    if any(c.isspace() for c in control):
        return "contains white space"
    if control.startswith("dns:"):
        name = control[4:]
        ok = bool(name) and "/" not in name and "?" not in name
        return None if ok else "expected dns:NAME"
    if control.startswith("tcp:"):
        host, _, port = control[4:].rpartition(":")
        ok = bool(host.strip("[]")) and port.isdigit() and 1 <= int(port) <= 65535
        return None if ok else "expected tcp:HOST:PORT"
    parts = urlsplit(control)
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    return "expected an http(s) URL, dns:NAME or tcp:HOST:PORT"


def _resolver(r: Reader, loc: Located, path: str) -> tuple[str, int]:
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


def _http_version(loc: Located, path: str, url: str) -> HttpVersion:
    # YAML reads 1.1 and 2 as numbers: take them as written
    value = loc.value
    text = value if isinstance(value, str) else "" if isinstance(value, bool) else str(value)
    if text not in {v.value for v in HttpVersion}:
        fail(loc, path, f'expected auto, "1.1" or "2", got {type_name(value)}')
    version = HttpVersion(text)
    if version is HttpVersion.HTTP2 and urlsplit(url).scheme == "http":
        fail(loc, path, "HTTP/2 needs an https:// URL (cleartext HTTP/2, h2c, is not spoken)")
    return version


def _failure_names(r: Reader, loc: Located, path: str) -> list[str]:
    names = r.strings(loc, path)
    for i, value in enumerate(names):
        if value not in {f.value for f in TARGET_FAILURES}:  # a bug is never retried
            item = loc.value[i] if isinstance(loc.value, list) else loc
            fail(
                item,
                f"{path}[{i}]",
                f'unknown failure class "{value}": expected dns, network, server or timeout',
            )
    return list(names)


def _status_list(r: Reader, loc: Located, path: str) -> tuple[int | str, ...]:
    items = list_of(loc, path) if isinstance(loc.value, list) else [loc]
    out: list[int | str] = []
    for i, item in enumerate(items):
        value, sub = item.value, f"{path}[{i}]" if isinstance(loc.value, list) else path
        if isinstance(value, str):
            value = r.text(item, sub).strip()
            if _STATUS_CLASS_RE.match(value.lower()):
                out.append(value.lower())
                continue
            if value.isdigit():
                value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            fail(item, sub, f"bad status {item.value!r}: use a code like 200 or a class like 2xx")
        out.append(value)
    if not out:
        fail(loc, path, "the list is empty: no status could pass")
    return tuple(out)


def _expect(r: Reader, loc: Located, path: str) -> Expectation:
    m = mapping(loc, path, EXPECT_KEYS)
    status = _status_list(r, m["status"], f"{path}.status") if "status" in m else _EXPECT.status
    max_latency = (
        r.duration(m["max_latency"], f"{path}.max_latency") if "max_latency" in m else None
    )
    body_contains = (
        r.text(m["body_contains"], f"{path}.body_contains", allow_scalar=True)
        if "body_contains" in m
        else None
    )
    body_regex = r.regex(m["body_regex"], f"{path}.body_regex") if "body_regex" in m else None
    headers: list[tuple[str, str]] = []
    if "headers" in m:
        hm = mapping(m["headers"], f"{path}.headers", set(m["headers"].value or {}))
        for key, sub in hm.items():
            headers.append((key, r.regex(sub, f"{path}.headers.{key}")))
    checks: list[JsonCheck] = []
    if "json" in m:
        for i, item in enumerate(list_of(m["json"], f"{path}.json")):
            checks.append(_json_check(r, item, f"{path}.json[{i}]"))
    cert_min_days = None
    if "cert_min_days" in m:
        cert_min_days = r.integer(m["cert_min_days"], f"{path}.cert_min_days", 0, 3650)
    answers = _answers(r, m["answers"], f"{path}.answers") if "answers" in m else None
    return Expectation(
        status=status,
        max_latency=max_latency,
        body_contains=body_contains,
        body_regex=body_regex,
        headers=tuple(headers),
        json=tuple(checks),
        cert_min_days=cert_min_days,
        answers=answers,
    )


def _answers(r: Reader, loc: Located, path: str) -> AnswerCheck:
    m = mapping(loc, path, ANSWER_KEYS)
    if not m:
        fail(loc, path, "nothing to check: add contains, min or matches")
    return AnswerCheck(
        contains=r.strings(m["contains"], f"{path}.contains") if "contains" in m else (),
        min=r.integer(m["min"], f"{path}.min", 0, 10_000) if "min" in m else None,
        matches=r.regex(m["matches"], f"{path}.matches") if "matches" in m else None,
    )


def _json_check(r: Reader, loc: Located, path: str) -> JsonCheck:
    m = mapping(loc, path, JSON_CHECK_KEYS)
    if "path" not in m:
        fail(loc, path, 'missing required key "path"')
    json_path = r.text(m["path"], f"{path}.path")
    try:
        parse_json_path(json_path)
    except ValueError as exc:
        fail(m["path"], f"{path}.path", str(exc))
    if len(m) == 1:
        fail(
            loc,
            path,
            "nothing to check: add exists, equals, min_items, max_items, matches or max_age",
        )
    equals = m.get("equals")
    equals_value = None
    if equals is not None:
        equals_value = equals.value
        if isinstance(equals_value, str):
            equals_value = r.text(equals, f"{path}.equals")
        elif isinstance(equals_value, dict | list):
            fail(equals, f"{path}.equals", "compare with a single value (text, number, bool, null)")
    return JsonCheck(
        path=json_path,
        exists=r.boolean(m["exists"], f"{path}.exists") if "exists" in m else None,
        equals=equals_value,
        has_equals=equals is not None,
        min_items=r.integer(m["min_items"], f"{path}.min_items", 0, 10**9)
        if "min_items" in m
        else None,
        max_items=r.integer(m["max_items"], f"{path}.max_items", 0, 10**9)
        if "max_items" in m
        else None,
        matches=r.regex(m["matches"], f"{path}.matches") if "matches" in m else None,
        max_age=r.duration(m["max_age"], f"{path}.max_age") if "max_age" in m else None,
    )
