"""YAML config files -> validated, frozen ``ProbeSpec``s.

Every problem is reported as ``FILE:LINE: FIELD: message``. We compose the YAML
into nodes ourselves (never ``yaml.load``) so that each value keeps its line,
and so that alias bombs, deep nesting and huge files are refused cheaply.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml

from synthprobe.errors import ConfigError
from synthprobe.models import (
    Expectation,
    Failure,
    JsonCheck,
    Kind,
    LiveSpec,
    MessagingSpec,
    ProbeSpec,
    UploadSpec,
    Variant,
)
from synthprobe.redact import Redactor
from synthprobe.units import parse_duration, parse_json_path, parse_size

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Larger files are refused before parsing: a config is never this big."""
MAX_NODES = 500_000
"""Nodes visited while converting; aliases count each time, so a YAML bomb stops here."""
MAX_DEPTH = 64
"""Nesting deeper than this is refused (no real config nests past 6)."""
MAX_REDIRECTS = 10

_VAR_RE = re.compile(r"\$\$|\$\{([^}:]*)(?::-([^}]*))?\}")
_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")

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
    "upload",
    "live",
    "messaging",
}
DEFAULT_KEYS = PROBE_KEYS - {"name", "url"}
TOP_KEYS = {"version", "settings", "defaults", "probes"}
SETTINGS_KEYS = {
    "concurrency",
    "output",
    "location",
    "junit",
    "prom",
    "public_vars",
    "env_proxy",
}
EXPECT_KEYS = {
    "status",
    "max_latency",
    "body_contains",
    "body_regex",
    "headers",
    "json",
    "cert_min_days",
}
JSON_CHECK_KEYS = {"path", "exists", "equals", "min_items", "max_items", "matches"}
UPLOAD_KEYS = {"size", "field", "filename", "content_type", "verify_url", "cleanup"}
CLEANUP_KEYS = {"method", "url"}
LIVE_KEYS = {"check_advancing", "variant", "segments", "max_age"}
MESSAGING_KEYS = {"send", "expect", "expect_regex"}
# Blocks merged key by key under each probe; every other default is replaced whole.
MERGED_BLOCKS = ("headers", "expect", "upload", "live", "messaging")


# --------------------------------------------------------------------------- YAML -> nodes


@dataclass(slots=True)
class Located:
    """A converted YAML value with the line (1-based) where it, or its key, stands."""

    value: Any
    line: int


class _Problem(Exception):
    """Internal: one problem at one place; collected into a ConfigError."""

    def __init__(self, line: int, path: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


def _fail(loc: Located, path: str, message: str) -> NoReturn:
    raise _Problem(loc.line, path, message)


class _Converter:
    """Composed YAML nodes -> ``Located`` trees, with limits on size and depth."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.nodes = 0
        self._scalars = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, line: int, path: str, depth: int = 0) -> Located:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Problem(
                line, path, f"more than {MAX_NODES} values (aliases expanding without end?)"
            )
        if depth > MAX_DEPTH:
            raise _Problem(line, path, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Located] = {}
            explicit = {id(k) for k, _ in node.value}
            self._scalars.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
            merged: set[str] = set()
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _Problem(key_line, path, "a key must be a plain string")
                key = str(self._scalars.construct_object(key_node))
                sub = f"{path}.{key}" if path else key
                if key in out and key not in merged:
                    raise _Problem(key_line, sub, f"duplicate key (first at line {out[key].line})")
                merged.discard(key)  # an explicit key overrides a merged one
                if id(key_node) not in explicit:
                    merged.add(key)
                converted = self.convert(value_node, key_line, sub, depth + 1)
                out[key] = Located(converted.value, key_line)
            return Located(out, line)
        if isinstance(node, yaml.SequenceNode):
            items = [
                self.convert(item, item.start_mark.line + 1, f"{path}[{i}]", depth + 1)
                for i, item in enumerate(node.value)
            ]
            return Located(items, line)
        value = self._scalars.construct_object(node)
        return Located(value, node.start_mark.line + 1)


def _read_source(path: str) -> tuple[str, bytes]:
    """(display name, raw bytes) of a config path, ``-`` meaning stdin."""
    if path == "-":
        return "<stdin>", sys.stdin.buffer.read(MAX_CONFIG_BYTES + 1)
    try:
        with open(path, "rb") as fh:
            return path, fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a config file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None


def _parse_yaml(name: str, raw: bytes) -> Located:
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{name}: larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{name}:{line}: not a text file (byte 0x{raw[exc.start]:02x} is not UTF-8)"]
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError([f"{name}:{line}: not a text file (NUL byte)"])
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "cannot parse"
        if exc.problem and exc.context and exc.context_mark:
            context_line = exc.context_mark.line + 1
            if context_line != line:
                problem += f" ({exc.context} at line {context_line})"
        raise ConfigError([f"{name}:{line}: invalid YAML: {problem}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(
            [f"{name}:{line}: invalid YAML: character {exc.character!r} is not allowed"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}:1: invalid YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}:1: invalid YAML: nested too deep"]) from None
    if node is None:
        raise ConfigError([f"{name}:1: the file is empty: expected a mapping with `probes:`"])
    try:
        return _Converter(name).convert(node, node.start_mark.line + 1, "")
    except _Problem as p:
        raise ConfigError([_format(name, p)]) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # a scalar PyYAML cannot construct, e.g. a timestamp like 2026-13-45
        raise ConfigError([f"{name}:1: invalid YAML value: {exc}"]) from None


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str) -> yaml.Node | None:
    """Compose with libyaml when present (10x faster on a 1000-probe file); on an error,
    compose again in pure Python, whose messages we pin and which say more."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _format(name: str, p: _Problem) -> str:
    where = f"{p.path}: " if p.path else ""
    return f"{name}:{p.line}: {where}{p.message}"


# --------------------------------------------------------------------------- variables


@dataclass
class _Expander:
    """Expands ``${VAR}`` and ``${VAR:-default}``; remembers values that are secrets."""

    env: Mapping[str, str]
    public: frozenset[str] = frozenset()
    secrets: set[str] = field(default_factory=set)

    def expand(self, loc: Located, path: str, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if not _VAR_NAME_RE.match(name):
                _fail(loc, path, f"bad variable reference {m.group(0)!r}")
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    _fail(loc, path, f"${{{name}}} is not set and has no default")
                return default
            if name not in self.public and value:
                self.secrets.add(value)
            return value

        return _VAR_RE.sub(sub, text)


# --------------------------------------------------------------------------- typed readers


def _type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f'a string ("{value[:40]}")'
    return type(value).__name__


def _mapping(loc: Located, path: str, allowed: set[str]) -> dict[str, Located]:
    if not isinstance(loc.value, dict):
        _fail(loc, path, f"expected a mapping, got {_type_name(loc.value)}")
    mapping: dict[str, Located] = loc.value
    for key, sub in mapping.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            _fail(sub, _join(path, key), f"unknown key{hint}")
    return mapping


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list(loc: Located, path: str) -> list[Located]:
    if isinstance(loc.value, list):
        return loc.value
    _fail(loc, path, f"expected a list, got {_type_name(loc.value)}")


class _Reader:
    """Typed access to a ``Located`` tree, expanding variables in strings."""

    def __init__(self, expander: _Expander) -> None:
        self.x = expander

    def text(self, loc: Located, path: str, *, allow_scalar: bool = False) -> str:
        value = loc.value
        if allow_scalar and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            hint = (
                " (YAML reads yes/no/on/off as booleans: quote it)"
                if isinstance(value, bool)
                else ""
            )
            _fail(loc, path, f"expected a string, got {_type_name(value)}{hint}")
        return self.x.expand(loc, path, value)

    def integer(self, loc: Located, path: str, lo: int, hi: int) -> int:
        value = loc.value
        if isinstance(value, str):
            value = self.x.expand(loc, path, value).strip()
            value = int(value) if re.fullmatch(r"-?\d+", value) else value
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(loc, path, f"expected a whole number, got {_type_name(value)}")
        if not lo <= value <= hi:
            _fail(loc, path, f"must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, loc: Located, path: str) -> bool:
        if isinstance(loc.value, bool):
            return loc.value
        _fail(loc, path, f"expected true or false, got {_type_name(loc.value)}")

    def _measure(
        self, loc: Located, path: str, parse: Callable[[object], Any], example: str
    ) -> tuple[object, Any]:
        """(value as written, parsed value) of a duration or size field."""
        value = loc.value
        if isinstance(value, str):
            value = self.x.expand(loc, path, value)
        elif not isinstance(value, int | float) or isinstance(value, bool):
            _fail(loc, path, f"expected {example}, got {_type_name(value)}")
        try:
            return value, parse(value)
        except ValueError as exc:
            _fail(loc, path, str(exc))

    def duration(self, loc: Located, path: str, *, positive: bool = True) -> float:
        value, seconds = self._measure(loc, path, parse_duration, "a duration such as 5s")
        if positive and seconds <= 0:
            _fail(loc, path, f"must be more than 0, got {value!r}")
        if seconds > 86400:
            _fail(loc, path, f"must be at most 24h, got {value!r}")
        return float(seconds)

    def size(self, loc: Located, path: str) -> int:
        value, size = self._measure(loc, path, parse_size, "a size such as 64KiB")
        if size > 64 * 1024**3:
            _fail(loc, path, f"must be at most 64GiB, got {value!r}")
        return int(size)

    def regex(self, loc: Located, path: str) -> str:
        pattern = self.text(loc, path)
        try:
            with warnings.catch_warnings():
                # "possible nested set" and the like: valid today, the user's to judge
                warnings.simplefilter("ignore")
                re.compile(pattern)
        except re.error as exc:
            _fail(loc, path, f"bad regex {pattern!r}: {exc}")
        return pattern

    def choice(self, loc: Located, path: str, choices: Iterable[str], what: str) -> str:
        options = list(choices)
        value = self.text(loc, path)
        if value not in options:
            _fail(loc, path, f'unknown {what} "{value}": expected one of {", ".join(options)}')
        return value

    def strings(self, loc: Located, path: str) -> tuple[str, ...]:
        items = [loc] if isinstance(loc.value, str) else _list(loc, path)
        return tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(items))


# --------------------------------------------------------------------------- the model


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
    return load_sources((_read_source(p) for p in paths), env, variables)


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
        root = _parse_yaml(name, raw)
        expander = _Expander(environ, frozenset(public))
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
    name: str, root: Located, expander: _Expander
) -> tuple[list[ProbeSpec], dict[str, Any], list[str]]:
    problems: list[str] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _Problem as p:
            problems.append(_format(name, p))
            return None

    top = attempt(lambda: _mapping(root, "", TOP_KEYS))
    if top is None:
        return [], {}, problems
    if "version" in top:
        attempt(lambda: _check_version(top["version"]))
    settings_loc = top.get("settings")
    if settings_loc is not None:
        public = attempt(lambda: _public_vars(settings_loc))
        if public:
            expander.public = expander.public | public
    reader = _Reader(expander)
    settings: dict[str, Any] = {}
    if settings_loc is not None:
        settings = attempt(lambda: _settings(reader, settings_loc)) or {}
    defaults: dict[str, Located] = {}
    if "defaults" in top:
        defaults = attempt(lambda: _mapping(top["defaults"], "defaults", DEFAULT_KEYS)) or {}
    if "probes" not in top:
        problems.append(f"{name}:{root.line}: probes: missing: a config needs a list of probes")
        return [], settings, problems
    items = attempt(lambda: _list(top["probes"], "probes"))
    if items is not None and not items:
        problems.append(f"{name}:{top['probes'].line}: probes: the list is empty")
    probes: list[ProbeSpec] = []
    for i, item in enumerate(items or []):
        try:
            probes.append(_probe(reader, name, item, f"probes[{i}]", defaults))
        except _Problem as p:
            problems.append(_format(name, p))
    return probes, settings, problems


def _check_version(loc: Located) -> None:
    if loc.value != 1:
        _fail(loc, "version", f"unsupported version {loc.value!r}: this synthprobe reads 1")


def _public_vars(loc: Located) -> frozenset[str]:
    if not isinstance(loc.value, dict) or "public_vars" not in loc.value:
        return frozenset()
    sub = loc.value["public_vars"]
    names = [sub] if isinstance(sub.value, str) else _list(sub, "settings.public_vars")
    out = set()
    for i, item in enumerate(names):
        if not isinstance(item.value, str) or not _VAR_NAME_RE.match(item.value):
            _fail(item, f"settings.public_vars[{i}]", "expected a variable name")
        out.add(item.value)
    return frozenset(out)


def _settings(r: _Reader, loc: Located) -> dict[str, Any]:
    m = _mapping(loc, "settings", SETTINGS_KEYS)
    out: dict[str, Any] = {}
    if "concurrency" in m:
        out["concurrency"] = r.integer(m["concurrency"], "settings.concurrency", 1, 100_000)
    if "env_proxy" in m:
        out["env_proxy"] = r.boolean(m["env_proxy"], "settings.env_proxy")
    for key in ("output", "location", "junit", "prom"):
        if key in m:
            value = r.text(m[key], f"settings.{key}")
            if not value:
                _fail(m[key], f"settings.{key}", "must not be empty")
            out[key] = value
    return out


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
    r: _Reader, filename: str, item: Located, path: str, defaults: dict[str, Located]
) -> ProbeSpec:
    own = _mapping(item, path, PROBE_KEYS)
    for required in ("name", "url"):
        if required not in own:
            _fail(item, path, f'missing required key "{required}"')
    name = r.text(own["name"], f"{path}.name")
    if not _NAME_RE.match(name):
        _fail(
            own["name"],
            f"{path}.name",
            f"bad name {name!r}: use letters, digits and . _ : / - (no spaces)",
        )
    m = _merge(defaults, own)
    kind = Kind(
        r.choice(m["kind"], f"{path}.kind", [k.value for k in Kind], "kind")
        if "kind" in m
        else Kind.HTTP.value
    )
    url = r.text(m["url"], f"{path}.url")
    _check_url(m["url"], f"{path}.url", url, kind)
    method = "POST" if kind is Kind.UPLOAD else "WS" if kind is Kind.MESSAGING else "GET"
    if "method" in m:
        method = r.text(m["method"], f"{path}.method").upper()
        if not _TOKEN_RE.match(method):
            _fail(m["method"], f"{path}.method", f"bad HTTP method {method!r}")
    timeout = r.duration(m["timeout"], f"{path}.timeout") if "timeout" in m else 10.0
    retries = r.integer(m["retries"], f"{path}.retries", 0, 100) if "retries" in m else 0
    retry_on = frozenset({Failure.DNS, Failure.NETWORK, Failure.TIMEOUT})
    if "retry_on" in m:
        classes = [Failure(c) for c in _failure_names(r, m["retry_on"], f"{path}.retry_on")]
        retry_on = frozenset(classes)
    headers: tuple[tuple[str, str], ...] = ()
    if "headers" in m:
        hm = _mapping(m["headers"], f"{path}.headers", set(m["headers"].value or {}))
        pairs = []
        for key, loc in hm.items():
            if not _TOKEN_RE.match(key):
                _fail(loc, f"{path}.headers.{key}", "bad header name")
            value = r.text(loc, f"{path}.headers.{key}", allow_scalar=True)
            if "\n" in value or "\r" in value:
                _fail(loc, f"{path}.headers.{key}", "a header value cannot span lines")
            pairs.append((key, value))
        headers = tuple(pairs)
    tags = r.strings(m["tags"], f"{path}.tags") if "tags" in m else ()
    expect = _expect(r, m["expect"], f"{path}.expect") if "expect" in m else Expectation()
    follow = (
        r.boolean(m["follow_redirects"], f"{path}.follow_redirects")
        if ("follow_redirects" in m)
        else True
    )
    verify = r.boolean(m["verify_tls"], f"{path}.verify_tls") if "verify_tls" in m else True
    max_body = r.size(m["max_body"], f"{path}.max_body") if "max_body" in m else 10 * 1024**2
    ip_version = None
    if "ip_version" in m:
        loc = m["ip_version"]
        text = str(loc.value).lower() if not isinstance(loc.value, bool) else ""
        if text not in ("4", "6", "auto"):
            _fail(loc, f"{path}.ip_version", f"expected 4, 6 or auto, got {_type_name(loc.value)}")
        ip_version = None if text == "auto" else int(text)
    upload = live = messaging = None
    for block, wanted in (
        ("upload", Kind.UPLOAD),
        ("live", Kind.LIVE),
        ("messaging", Kind.MESSAGING),
    ):
        if block in m and kind is not wanted and block in own:
            _fail(m[block], f"{path}.{block}", f"only for kind {wanted.value}, not {kind.value}")
    if kind is Kind.UPLOAD:
        upload = _upload(r, m["upload"], f"{path}.upload") if "upload" in m else UploadSpec()
    elif kind is Kind.LIVE:
        live = _live(r, m["live"], f"{path}.live") if "live" in m else LiveSpec()
    elif kind is Kind.MESSAGING:
        if "messaging" not in m:
            _fail(item, path, 'missing required key "messaging" (with send and expect)')
        messaging = _messaging(r, m["messaging"], f"{path}.messaging")
    return ProbeSpec(
        name=name,
        kind=kind,
        url=url,
        method=method,
        timeout=timeout,
        retries=retries,
        retry_on=retry_on,
        headers=headers,
        tags=tags,
        expect=expect,
        follow_redirects=follow,
        verify_tls=verify,
        max_body=max_body,
        ip_version=ip_version,
        upload=upload,
        live=live,
        messaging=messaging,
        source=f"{filename}:{item.line}",
    )


def _check_url(loc: Located, path: str, url: str, kind: Kind) -> None:
    schemes = ("ws", "wss") if kind is Kind.MESSAGING else ("http", "https")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        _fail(loc, path, f"bad URL {url!r}: {exc}")
    if parts.scheme not in schemes:
        _fail(
            loc,
            path,
            f"bad URL {url!r}: scheme must be {' or '.join(schemes)} for kind {kind.value}",
        )
    if not parts.hostname:
        _fail(loc, path, f"bad URL {url!r}: no host")
    if any(c.isspace() for c in url):
        _fail(loc, path, f"bad URL {url!r}: contains white space")


def _failure_names(r: _Reader, loc: Located, path: str) -> list[str]:
    names = r.strings(loc, path)
    for i, value in enumerate(names):
        if value not in {f.value for f in Failure}:
            item = loc.value[i] if isinstance(loc.value, list) else loc
            _fail(
                item,
                f"{path}[{i}]",
                f'unknown failure class "{value}": expected dns, network, server or timeout',
            )
    return list(names)


def _status_list(r: _Reader, loc: Located, path: str) -> tuple[int | str, ...]:
    items = _list(loc, path) if isinstance(loc.value, list) else [loc]
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
            _fail(item, sub, f"bad status {item.value!r}: use a code like 200 or a class like 2xx")
        out.append(value)
    if not out:
        _fail(loc, path, "the list is empty: no status could pass")
    return tuple(out)


def _expect(r: _Reader, loc: Located, path: str) -> Expectation:
    m = _mapping(loc, path, EXPECT_KEYS)
    status = _status_list(r, m["status"], f"{path}.status") if "status" in m else ("2xx",)
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
        hm = _mapping(m["headers"], f"{path}.headers", set(m["headers"].value or {}))
        for key, sub in hm.items():
            headers.append((key, r.regex(sub, f"{path}.headers.{key}")))
    checks: list[JsonCheck] = []
    if "json" in m:
        for i, item in enumerate(_list(m["json"], f"{path}.json")):
            checks.append(_json_check(r, item, f"{path}.json[{i}]"))
    cert_min_days = None
    if "cert_min_days" in m:
        cert_min_days = r.integer(m["cert_min_days"], f"{path}.cert_min_days", 0, 3650)
    return Expectation(
        status=status,
        max_latency=max_latency,
        body_contains=body_contains,
        body_regex=body_regex,
        headers=tuple(headers),
        json=tuple(checks),
        cert_min_days=cert_min_days,
    )


def _json_check(r: _Reader, loc: Located, path: str) -> JsonCheck:
    m = _mapping(loc, path, JSON_CHECK_KEYS)
    if "path" not in m:
        _fail(loc, path, 'missing required key "path"')
    json_path = r.text(m["path"], f"{path}.path")
    try:
        parse_json_path(json_path)
    except ValueError as exc:
        _fail(m["path"], f"{path}.path", str(exc))
    if len(m) == 1:
        _fail(loc, path, "nothing to check: add exists, equals, min_items, max_items or matches")
    equals = m.get("equals")
    equals_value = None
    if equals is not None:
        equals_value = equals.value
        if isinstance(equals_value, str):
            equals_value = r.text(equals, f"{path}.equals")
        elif isinstance(equals_value, dict | list):
            _fail(
                equals, f"{path}.equals", "compare with a single value (text, number, bool, null)"
            )
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
    )


def _upload(r: _Reader, loc: Located, path: str) -> UploadSpec:
    m = _mapping(loc, path, UPLOAD_KEYS)
    base = UploadSpec()
    size = r.size(m["size"], f"{path}.size") if "size" in m else base.size
    if size > 1024**3:
        _fail(m["size"], f"{path}.size", "must be at most 1GiB (the payload is held in memory)")
    verify_url = None
    if "verify_url" in m:
        verify_url = r.text(m["verify_url"], f"{path}.verify_url")
        _check_template(m["verify_url"], f"{path}.verify_url", verify_url)
    cleanup_method, cleanup_url = base.cleanup_method, None
    if "cleanup" in m:
        sub = m["cleanup"]
        if isinstance(sub.value, str):
            cleanup_url = r.text(sub, f"{path}.cleanup")
        else:
            cm = _mapping(sub, f"{path}.cleanup", CLEANUP_KEYS)
            if "url" not in cm:
                _fail(sub, f"{path}.cleanup", 'missing required key "url"')
            cleanup_url = r.text(cm["url"], f"{path}.cleanup.url")
            if "method" in cm:
                cleanup_method = r.text(cm["method"], f"{path}.cleanup.method").upper()
                if not _TOKEN_RE.match(cleanup_method):
                    _fail(cm["method"], f"{path}.cleanup.method", "bad HTTP method")
        _check_template(sub, f"{path}.cleanup", cleanup_url)
    return UploadSpec(
        size=size,
        field=r.text(m["field"], f"{path}.field") if "field" in m else base.field,
        filename=r.text(m["filename"], f"{path}.filename") if "filename" in m else base.filename,
        content_type=r.text(m["content_type"], f"{path}.content_type")
        if "content_type" in m
        else base.content_type,
        verify_url=verify_url,
        cleanup_method=cleanup_method,
        cleanup_url=cleanup_url,
    )


_FIELD_RE = re.compile(r"\{([^{}]*)\}")


def _check_template(loc: Located, path: str, template: str) -> None:
    """A URL with ``{field}`` placeholders: each must be a JSON path; the rest a URL."""
    for field_path in _FIELD_RE.findall(template):
        try:
            parse_json_path(field_path)
        except ValueError as exc:
            _fail(loc, path, f"placeholder {{{field_path}}}: {exc}")
    _check_url(loc, path, _FIELD_RE.sub("x", template), Kind.UPLOAD)


def _live(r: _Reader, loc: Located, path: str) -> LiveSpec:
    m = _mapping(loc, path, LIVE_KEYS)
    base = LiveSpec()
    return LiveSpec(
        check_advancing=r.boolean(m["check_advancing"], f"{path}.check_advancing")
        if "check_advancing" in m
        else base.check_advancing,
        variant=Variant(
            r.choice(m["variant"], f"{path}.variant", [v.value for v in Variant], "variant")
        )
        if "variant" in m
        else base.variant,
        segments=r.integer(m["segments"], f"{path}.segments", 0, 20)
        if "segments" in m
        else base.segments,
        max_age=r.duration(m["max_age"], f"{path}.max_age") if "max_age" in m else None,
    )


def _messaging(r: _Reader, loc: Located, path: str) -> MessagingSpec:
    m = _mapping(loc, path, MESSAGING_KEYS)
    if "send" not in m:
        _fail(loc, path, 'missing required key "send"')
    if "expect" not in m and "expect_regex" not in m:
        _fail(loc, path, 'missing "expect" or "expect_regex": what reply passes?')
    return MessagingSpec(
        send=r.text(m["send"], f"{path}.send"),
        expect=r.text(m["expect"], f"{path}.expect") if "expect" in m else None,
        expect_regex=r.regex(m["expect_regex"], f"{path}.expect_regex")
        if "expect_regex" in m
        else None,
    )
