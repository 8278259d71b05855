"""The probe schema: what a config may say, read into frozen ``ProbeSpec``s.

Every problem is reported as ``FILE:LINE: FIELD: message``, and every problem of a
file is reported, not just the first (up to ``MAX_PROBLEMS``). Here: files, defaults,
probes and journey steps; ``settings.py`` and ``expectations.py`` read the blocks they
name. Kinds read their own blocks (``upload:``, ``live:``...) through their
``KindInfo``: nothing here knows a kind by name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from synthprobe.config.expectations import EXPECT_FIELDS, fit_to_kind, read_expect
from synthprobe.config.nodes import Located, Problem, fail, format_problem, parse_yaml, read_source
from synthprobe.config.readers import (
    TOKEN_RE,
    Collector,
    Field,
    Reader,
    Table,
    check_url,
    choice,
    each_string,
    http_method,
    integer,
    list_of,
    mapping,
    raw,
    type_name,
)
from synthprobe.config.settings import SETTINGS_FIELDS, read_alert, read_resolver, read_settings
from synthprobe.config.variables import VAR_NAME_RE, Expander
from synthprobe.errors import ConfigError
from synthprobe.jsonpath import parse_json_path
from synthprobe.models import (
    TARGET_FAILURES,
    Capture,
    Expectation,
    Failure,
    HttpVersion,
    Journey,
    JourneyStep,
    ProbeSpec,
)
from synthprobe.probers import DEFAULT_KIND, KINDS
from synthprobe.redact import Redactor

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")

BLOCKS = {info.block: name for name, info in KINDS.items() if info.block is not None}
"""Kind blocks (``live:``) -> the kind that owns each."""

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

_CAPTURE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TOP_KEYS = {"version", "settings", "defaults", "probes"}

MAX_PROBLEMS = 50
"""Problems shown for one load: past this, a count (a generated file with one mistake
repeated 100,000 times must not print 100,000 lines)."""

_EXPECT = Expectation()
"""The dataclass's default, one object shared by every probe that sets no ``expect``."""


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
    for name, data in sources:
        files.append(name)
        root = parse_yaml(name, data)
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
        shown = [mask.text(p) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
        raise ConfigError(shown)
    return LoadedConfig(tuple(probes), settings, frozenset(secrets), tuple(files))


def _load_file(
    name: str, root: Located, expander: Expander
) -> tuple[list[ProbeSpec], dict[str, Any], list[str]]:
    problems: list[str] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Problem as p:
            problems.extend(format_problem(name, one) for one in p.all)
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
        settings = attempt(lambda: read_settings(reader, settings_loc)) or {}
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
            problems.extend(format_problem(name, one) for one in p.all)
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
    """Every key read through ``PROBE_FIELDS``; then the rules that tie keys together
    (a kind's URL, its block, a journey). Every problem of the probe is raised together."""
    block = PROBE_FIELDS.read(r, item, path, merge=lambda own: _merge(defaults, own))
    own, m, v = block.own, block.given, block.values
    kind = v.get("kind", DEFAULT_KIND) if "kind" in m else DEFAULT_KIND
    if "kind" in m and "kind" not in v:  # an unknown kind: its rules would only add noise
        block.done()  # raises: the kind's problem is among them
    info = KINDS[kind]
    url = v.get("url")
    if url is not None:
        block.check(_check_probe_url, m["url"], f"{path}.url", url, kind)
    expect: Expectation = v.get("expect", _EXPECT)
    if "expect" in m:
        expect = fit_to_kind(block, expect, own.get("expect"), f"{path}.expect", info)
    http_version = v.pop("http_version", HttpVersion.AUTO)
    if "http_version" in m:
        if "http_version" in own and not info.negotiates_http:
            block.add(own["http_version"], f"{path}.http_version", f"not for kind {kind}")
        elif not info.negotiates_http:
            http_version = HttpVersion.AUTO  # a default meant for the HTTP kinds
        elif http_version is HttpVersion.HTTP2 and url and urlsplit(url).scheme == "http":
            block.add(
                m["http_version"],
                f"{path}.http_version",
                "HTTP/2 needs an https:// URL (cleartext HTTP/2, h2c, is not spoken)",
            )
    body = block.check(_body, r, m, path)
    if body is not None and body[0] is not None and not info.request_body:
        key = "json" if body[1] else "body"
        block.add(m[key], f"{path}.{key}", f"not for kind {kind}: it sends its own request body")
    journey = None
    if not JOURNEY_KEYS.isdisjoint(own):
        if not info.journeys:
            key = next(k for k in JOURNEY_KEYS if k in own)
            message = f"not for kind {kind}: steps are for HTTP requests"
            block.add(own[key], f"{path}.{key}", message)
        else:
            journey = block.check(_journey, r, m, v, path, body)
    for key, owner in BLOCKS.items():
        if key in own and owner != kind:
            block.add(m[key], f"{path}.{key}", f"only for kind {owner}, not {kind}")
    options = None
    if info.parse_block is not None:
        assert info.block is not None
        parse, key = info.parse_block, info.block
        options = block.check(parse, r, m.get(key), f"{path}.{key}", item)
    block.done()
    fields = block.fields()
    for key in ("timeout", "headers", "tags"):  # equal values, one object
        if key in fields:
            fields[key] = share(fields[key])
    assert body is not None
    return ProbeSpec(
        **fields,
        kind=kind,
        method=v.get("method", info.default_method),
        expect=share(expect),
        http_version=http_version,
        body=body[0],
        json_body=body[1],
        journey=journey,
        options=options,
        source=f"{filename}:{item.line}",
    )


def _check_probe_url(loc: Located, path: str, url: str, kind: str) -> None:
    info = KINDS[kind]
    check_url(loc, path, url, info.schemes, kind, need_host=info.url_has_host)
    if info.check_url is not None:
        problem = info.check_url(urlsplit(url))
        if problem:
            fail(loc, path, f"bad URL {url!r}: {problem}")


def _name(r: Reader, loc: Located, path: str) -> str:
    name = r.text(loc, path)
    if not _NAME_RE.match(name):
        fail(loc, path, f"bad name {name!r}: use letters, digits and . _ : / - (no spaces)")
    return name


def _ip_version(r: Reader, loc: Located, path: str) -> int | None:
    text = str(loc.value).lower() if not isinstance(loc.value, bool) else ""
    if text not in ("4", "6", "auto"):
        fail(loc, path, f"expected 4, 6 or auto, got {type_name(loc.value)}")
    return None if text == "auto" else int(text)


def _retry_on(r: Reader, loc: Located, path: str) -> frozenset[Failure]:
    return frozenset(each_string(r, loc, path, _failure))


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


def _journey(
    r: Reader,
    m: dict[str, Located],
    v: dict[str, Any],
    path: str,
    body: tuple[str | None, bool] | None,
) -> Journey:
    """The probe's request is the first step; ``steps`` follow, each using only what
    an earlier step captures."""
    headers: tuple[tuple[str, str], ...] = v.get("headers", ())
    url: str = v.get("url", "")
    main = r.text(m["step_name"], f"{path}.step_name") if "step_name" in m else "main"
    early = _uses(url, body[0] if body else None, *(value for _, value in headers))
    if early:
        where = m["url"] if _uses(url) else m.get("json") or m.get("body") or m["headers"]
        name = sorted(early)[0]
        fail(where, path, f"{{{{{name}}}}}: no earlier step captures {name}")
    capture = _captures(r, m["capture"], f"{path}.capture") if "capture" in m else ()
    known = {c.name for c in capture}
    inherited = _Inherited(
        headers,
        v.get("follow_redirects", True),
        v.get("max_body", ProbeSpec.__dataclass_fields__["max_body"].default),
    )
    steps: list[JourneyStep] = []
    names = {main}
    items = list_of(m["steps"], f"{path}.steps") if "steps" in m else []
    problems = Collector()
    for i, item in enumerate(items):
        at = f"{path}.steps[{i}]"
        step = problems.take(_step, r, item, at, inherited, frozenset(known))
        if step is None:
            continue
        if step.name in names:
            problems.add(Problem(item.line, f"{at}.name", f'duplicate step name "{step.name}"'))
        names.add(step.name)
        known |= {c.name for c in step.capture}
        steps.append(step)
    problems.raise_any()

    def captured(name: str, item: Located, where: str) -> str:
        if name not in known:
            fail(item, where, f"no step captures {name}")
        return name

    mask = each_string(r, m["mask"], f"{path}.mask", captured) if "mask" in m else ()
    return Journey(main=main, capture=capture, steps=tuple(steps), mask=mask)


@dataclass(frozen=True, slots=True)
class _Inherited:
    """What every step takes from its probe unless it says otherwise."""

    headers: tuple[tuple[str, str], ...]
    follow_redirects: bool
    max_body: int


def _step(
    r: Reader, loc: Located, path: str, probe: _Inherited, known: frozenset[str]
) -> JourneyStep:
    block = STEP_FIELDS.read(r, loc, path)
    m, v = block.given, block.values
    url = v.get("url")
    if url is not None and (not _uses(url) or not url.strip().startswith("{{")):
        checked = _PLACEHOLDER_RE.sub("x", url)
        block.check(check_url, m["url"], f"{path}.url", checked, ("http", "https"), "step")
    headers = dict(probe.headers)  # the probe's headers (defaults included) on every step
    own: tuple[tuple[str, str], ...] = v.get("headers", ())
    lowered = {k.lower() for k, _ in own}
    headers = {k: value for k, value in headers.items() if k.lower() not in lowered}
    headers.update(own)
    body = block.check(_body, r, m, path) or (None, False)
    for key, text in (("url", url), ("headers", " ".join(headers.values())), ("body", body[0])):
        missing = sorted(_uses(text) - known)
        if missing:
            where = m.get(key) or m.get("json") or loc
            message = f"{{{{{missing[0]}}}}}: no earlier step captures {missing[0]}"
            block.add(where, f"{path}.{key}", message)
    block.done()
    fields = block.fields()
    fields.setdefault("method", "GET")
    fields.setdefault("follow_redirects", probe.follow_redirects)
    fields.setdefault("max_body", probe.max_body)
    return JourneyStep(**fields, headers=tuple(headers.items()), body=body[0], json_body=body[1])


def _http_version(r: Reader, loc: Located, path: str) -> HttpVersion:
    # YAML reads 1.1 and 2 as numbers: take them as written
    value = loc.value
    text = value if isinstance(value, str) else "" if isinstance(value, bool) else str(value)
    if text not in {v.value for v in HttpVersion}:
        fail(loc, path, f'expected auto, "1.1" or "2", got {type_name(value)}')
    return HttpVersion(text)


def _failure(name: str, item: Located, where: str) -> Failure:
    if name not in {f.value for f in TARGET_FAILURES}:  # a bug is never retried
        message = f'unknown failure class "{name}": expected dns, network, server or timeout'
        fail(item, where, message)
    return Failure(name)


# The tables: one per block, the one place its keys are written. The allowed keys,
# the read loop and the defaults (the dataclass's) come from them.
PROBE_FIELDS = Table(
    Field("name", _name, required=True),
    Field("kind", choice(KINDS, "kind"), attr=None),
    Field("url", Reader.text, required=True),
    Field("method", http_method, attr=None),
    Field("headers", _headers),
    Field("timeout", Reader.duration),
    Field("retries", integer(0, 100)),
    Field("retry_on", _retry_on),
    Field("tags", Reader.strings),
    Field("expect", read_expect, attr=None),
    Field("follow_redirects", Reader.boolean),
    Field("verify_tls", Reader.boolean),
    Field("max_body", Reader.size),
    Field("ip_version", _ip_version),
    Field("http_version", _http_version, attr=None),
    Field("resolver", read_resolver),
    Field("alert", read_alert),
    Field("json", raw, attr=None),
    Field("body", raw, attr=None),
    Field("capture", raw, attr=None),
    Field("mask", raw, attr=None),
    Field("steps", raw, attr=None),
    Field("step_name", raw, attr=None),
    *(Field(block, raw, attr=None) for block in BLOCKS),
)

JOURNEY_KEYS = frozenset({"capture", "mask", "steps", "step_name"})

STEP_FIELDS = Table(
    Field("name", _name, required=True),
    Field("url", Reader.text, required=True),
    Field("method", http_method),
    Field("headers", _headers, attr=None),
    Field("json", raw, attr=None),
    Field("body", raw, attr=None),
    Field("expect", read_expect),
    Field("capture", _captures),
    Field("follow_redirects", Reader.boolean),
    Field("max_body", Reader.size),
)

PROBE_KEYS = PROBE_FIELDS.keys
STEP_KEYS = STEP_FIELDS.keys
EXPECT_KEYS = EXPECT_FIELDS.keys
SETTINGS_KEYS = SETTINGS_FIELDS.keys
DEFAULT_KEYS = PROBE_KEYS - {"name", "url", "json", "body"} - JOURNEY_KEYS
"""What ``defaults:`` may set: everything a probe may, but what names one probe."""
MERGED_BLOCKS = ("headers", "expect", "alert", *BLOCKS)
"""Blocks merged key by key under each probe; every other default is replaced whole."""
