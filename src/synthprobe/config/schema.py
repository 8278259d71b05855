"""The probe schema: what a config may say, read into frozen ``ProbeSpec``s.

Every problem is reported as ``FILE:LINE: FIELD: message``, and every problem of a
file is reported, not just the first (up to ``MAX_PROBLEMS``). Here: files, defaults
and probes; ``settings.py``, ``expectations.py`` and ``journeys.py`` read the blocks
they name. Kinds read their own blocks (``upload:``, ``live:``...) through their
``KindInfo``: nothing here knows a kind by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from synthprobe.config.expectations import EXPECT_FIELDS, fit_to_kind, read_expect
from synthprobe.config.journeys import JOURNEY_KEYS, STEP_FIELDS, read_journey
from synthprobe.config.nodes import Located, Problem, fail, format_problem, parse_yaml, read_source
from synthprobe.config.readers import (
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
    name_text,
    raw,
    request_body,
    request_headers,
    type_name,
)
from synthprobe.config.settings import SETTINGS_FIELDS, read_alert, read_resolver, read_settings
from synthprobe.config.slo import read_slo
from synthprobe.config.variables import VAR_NAME_RE, Expander
from synthprobe.errors import ConfigError
from synthprobe.models import (
    TARGET_FAILURES,
    Expectation,
    Failure,
    HttpVersion,
    ProbeSpec,
)
from synthprobe.probers import DEFAULT_KIND, KINDS
from synthprobe.redact import Redactor

BLOCKS = {info.block: name for name, info in KINDS.items() if info.block is not None}
"""Kind blocks (``live:``) -> the kind that owns each."""

TOP_KEYS = {"version", "settings", "defaults", "probes"}

MAX_PROBLEMS = 50
"""Problems shown for one load: past this, a count (a generated file with one mistake
repeated 100,000 times must not print 100,000 lines)."""


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
    told: set[str] = set()  # a bad default is one problem, not one per probe
    for i in range(len(items)):
        # a probe's tree goes once it is a ProbeSpec: 100,000 probes never hold both
        item, items[i] = items[i], _SPENT
        try:
            probes.append(_probe(reader, name, item, f"probes[{i}]", defaults, share))
        except Problem as p:
            inherited = _lines(top["defaults"]) - _lines(item) if defaults else set()
            for one in p.all:
                if one.line in inherited:  # said where it is written: under defaults
                    one = Problem(one.line, _as_default(one.path), one.message)
                text = format_problem(name, one)
                if text not in told:
                    told.add(text)
                    problems.append(text)
    return probes, settings, problems


def _lines(loc: Located) -> set[int]:
    """Every line a YAML value and what it holds stand on."""
    lines = {loc.line}
    value = loc.value
    for child in (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    ):
        if isinstance(child, Located):
            lines |= _lines(child)
    return lines


def _as_default(path: str) -> str:
    """``probes[3].slo.window`` -> ``defaults.slo.window``."""
    _probe_index, dot, rest = path.partition(".")
    return f"defaults.{rest}" if dot else "defaults"


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


def _scheme(url: str | None) -> str | None:
    """A URL's scheme, lower-cased; None without one. Never raises: a URL urlsplit
    refuses ("https://[[a-") has its own problem, found by the URL's check."""
    if not url or ":" not in url:
        return None
    return url.split(":", 1)[0].lower()


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
    if "expect" in m:  # unreadable or not, a key its kind cannot judge is a problem
        expect = v.get("expect", Expectation())
        v["expect"] = fit_to_kind(block, expect, own.get("expect"), f"{path}.expect", info)
    if "http_version" in m:
        if "http_version" in own and not info.negotiates_http:
            block.add(own["http_version"], f"{path}.http_version", f"not for kind {kind}")
        elif not info.negotiates_http:
            v.pop("http_version", None)  # a default meant for the HTTP kinds
        elif v.get("http_version") is HttpVersion.HTTP2 and _scheme(url) == "http":
            block.add(
                m["http_version"],
                f"{path}.http_version",
                "HTTP/2 needs an https:// URL (cleartext HTTP/2, h2c, is not spoken)",
            )
        elif v.get("http_version") is HttpVersion.HTTP3 and _scheme(url) == "http":
            block.add(
                m["http_version"],
                f"{path}.http_version",
                "HTTP/3 needs an https:// URL (QUIC always uses TLS)",
            )
    body = block.check(request_body, r, m, path)
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
            journey = block.check(read_journey, r, m, v, path, body)
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
    for key in ("timeout", "headers", "tags", "expect"):  # equal values, one object
        if key in fields:
            fields[key] = share(fields[key])
    assert body is not None
    return ProbeSpec(
        **fields,
        kind=kind,
        method=v.get("method", info.default_method),
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


def _ip_version(r: Reader, loc: Located, path: str) -> int | None:
    text = str(loc.value).lower() if not isinstance(loc.value, bool) else ""
    if text not in ("4", "6", "auto"):
        fail(loc, path, f"expected 4, 6 or auto, got {type_name(loc.value)}")
    return None if text == "auto" else int(text)


def _retry_on(r: Reader, loc: Located, path: str) -> frozenset[Failure]:
    return frozenset(each_string(r, loc, path, _failure))


def _http_version(r: Reader, loc: Located, path: str) -> HttpVersion:
    # YAML reads 1.1 and 2 as numbers: take them as written
    value = loc.value
    text = value if isinstance(value, str) else "" if isinstance(value, bool) else str(value)
    if text not in {v.value for v in HttpVersion}:
        fail(loc, path, f'expected auto, "1.1", "2" or "3", got {type_name(value)}')
    return HttpVersion(text)


def _failure(name: str, item: Located, where: str) -> Failure:
    if name not in {f.value for f in TARGET_FAILURES}:  # a bug is never retried
        message = f'unknown failure class "{name}": expected dns, network, server or timeout'
        fail(item, where, message)
    return Failure(name)


# The tables: one per block. The allowed keys, the read loop and the defaults (the
# dataclass's) come from them; expect's keys are also judged per kind (observes.py).
PROBE_FIELDS = Table(
    Field("name", name_text, required=True),
    Field("kind", choice(KINDS, "kind"), attr=None),
    Field("url", Reader.text, required=True),
    Field("method", http_method, attr=None),
    Field("headers", request_headers),
    Field("timeout", Reader.duration),
    Field("retries", integer(0, 100)),
    Field("retry_on", _retry_on),
    Field("tags", Reader.strings),
    Field("expect", read_expect),
    Field("follow_redirects", Reader.boolean),
    Field("verify_tls", Reader.boolean),
    Field("max_body", Reader.size),
    Field("ip_version", _ip_version),
    Field("http_version", _http_version),
    Field("resolver", read_resolver),
    Field("alert", read_alert),
    Field("slo", read_slo),
    Field("trace_context", Reader.boolean),
    Field("json", raw, attr=None),
    Field("body", raw, attr=None),
    Field("capture", raw, attr=None),
    Field("mask", raw, attr=None),
    Field("steps", raw, attr=None),
    Field("step_name", raw, attr=None),
    *(Field(block, raw, attr=None) for block in BLOCKS),
)

PROBE_KEYS = PROBE_FIELDS.keys
STEP_KEYS = STEP_FIELDS.keys
EXPECT_KEYS = EXPECT_FIELDS.keys
SETTINGS_KEYS = SETTINGS_FIELDS.keys
DEFAULT_KEYS = PROBE_KEYS - {"name", "url", "json", "body"} - JOURNEY_KEYS
"""What ``defaults:`` may set: everything a probe may, but what names one probe."""
MERGED_BLOCKS = ("headers", "expect", "alert", "slo", *BLOCKS)
"""Blocks merged key by key under each probe; every other default is replaced whole."""
