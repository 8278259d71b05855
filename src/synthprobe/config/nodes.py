"""YAML text -> ``Located`` trees: every value keeps the line it stands on.

We build the tree from the parser's events ourselves (never ``yaml.load``, never
``yaml.compose``) so that each value keeps its line, alias bombs, deep nesting and huge
files are refused cheaply, and no node tree is held beside the values: composing one
took 2 KB a probe, more than the probes themselves (`probe validate` of 100,000 probes
peaked at 326 MB of RSS; now 109 MB).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from synthprobe.errors import ConfigError

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Larger files are refused before parsing: a config is never this big."""
MAX_NODES = 500_000
"""Values counted while building; an alias counts everything it stands for each time it
is used, so a YAML bomb stops here before it is expanded."""
MAX_DEPTH = 64
"""Nesting deeper than this is refused (no real config nests past 6)."""

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"


@dataclass(slots=True)
class Located:
    """A converted YAML value with the line (1-based) where it, or its key, stands."""

    value: Any
    line: int


class Problem(Exception):
    """Internal: one problem at one place; collected into a ConfigError."""

    def __init__(self, line: int, path: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message

    @property
    def all(self) -> list[Problem]:
        """Every problem this one stands for (``Problems`` stands for several)."""
        return [self]


class Problems(Problem):
    """Several problems of one block, raised together so that a reader reports every
    problem of a probe; it is a ``Problem`` (its first), so callers need one ``except``."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__(first.line, first.path, first.message)
        # in file order, as a reader fixes them (stable: one line's problems keep theirs)
        self._all = sorted((one for p in problems for one in p.all), key=lambda p: p.line)

    @property
    def all(self) -> list[Problem]:
        return list(self._all)


def fail(loc: Located, path: str, message: str) -> NoReturn:
    raise Problem(loc.line, path, message)


@dataclass(slots=True)
class _Built:
    """A finished value, with what it costs each time an alias repeats it."""

    loc: Located
    size: int
    height: int


@dataclass(slots=True)
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    items: dict[str, Located] | list[Located]
    line: int
    path: str
    depth: int
    anchor: str | None
    size: int = 1
    height: int = 0
    key: str | None = None
    """Mapping: the key whose value comes next."""
    key_line: int = 0
    merging: bool = False
    """Mapping: the value that comes next is a ``<<`` merge."""
    merges: list[dict[str, Located]] = field(default_factory=list)

    @property
    def awaits_key(self) -> bool:
        """A mapping whose next event is a key (not a value, not a ``<<`` merge)."""
        return isinstance(self.items, dict) and self.key is None and not self.merging

    def child_path(self, key: str | None = None) -> str:
        if isinstance(self.items, list):
            return f"{self.path}[{len(self.items)}]"
        if key is None:  # a `<<` merge's value
            return self.path
        return f"{self.path}.{key}" if self.path else key


class Builder:
    """Parser events -> one ``Located`` tree, with limits on size and depth.

    Iterative (an explicit stack), so 10,000 opening brackets cost no recursion. An
    alias shares the ``Located`` its anchor built; nothing downstream mutates them.
    """

    def __init__(self) -> None:
        self.nodes = 0
        self.anchors: dict[str, _Built | None] = {}
        """None while the anchored value is still being built."""
        self.anchor_marks: dict[str, Any] = {}  # libyaml's marks or PyYAML's
        self._loader = yaml.SafeLoader("")  # resolves and constructs plain scalars

    def build(self, events: Iterator[yaml.Event]) -> Located | None:
        next(events)  # stream start
        first = next(events)
        if isinstance(first, yaml.StreamEndEvent):
            return None
        root = self._value(events)
        next(events)  # document end
        after = next(events)
        if not isinstance(after, yaml.StreamEndEvent):
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                _mark(first.end_mark),
                "but found another document",
                _mark(after.start_mark),
            )
        return root

    def _value(self, events: Iterator[yaml.Event]) -> Located:
        stack: list[_Open] = []
        for event in events:
            parent = stack[-1] if stack else None
            # the mapping this event is a key of, if it is one
            keyed = parent if parent is not None and parent.awaits_key else None
            line = _line(event)
            done: _Built | None = None
            if isinstance(event, yaml.ScalarEvent):
                if keyed is not None:
                    self._key(keyed, event, line)
                    continue
                path = "" if parent is None else parent.child_path(parent.key)
                done = _Built(Located(self._scalar(event, line, path), line), 1, 0)
                self._anchor(event, done)
            elif isinstance(event, yaml.AliasEvent):
                done = self._alias(event, line, parent)
                if keyed is not None:
                    self._alias_key(keyed, done, line)
                    continue
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if keyed is not None:
                    raise Problem(line, keyed.path, "a key must be a plain string")
                depth = 0 if parent is None else parent.depth + 1
                path = "" if parent is None else parent.child_path(parent.key)
                if depth > MAX_DEPTH:
                    raise Problem(line, path, f"nested more than {MAX_DEPTH} levels deep")
                self._count(1, line, path)
                if event.anchor is not None:
                    self._reserve(event)
                items: dict[str, Located] | list[Located] = (
                    {} if isinstance(event, yaml.MappingStartEvent) else []
                )
                stack.append(_Open(items, line, path, depth, event.anchor))
                continue
            else:  # the end of a mapping or a sequence
                closed = stack.pop()
                value: dict[str, Located] | list[Located] = closed.items
                if closed.merges:
                    value = _merged(closed.merges, closed.items)  # type: ignore[arg-type]
                done = _Built(Located(value, closed.line), closed.size, closed.height + 1)
                if closed.anchor is not None:
                    self.anchors[closed.anchor] = done
            if not stack:
                return done.loc
            self._add(stack[-1], done, line)
        raise yaml.composer.ComposerError(None, None, "unexpected end of the stream", None)

    def _key(self, parent: _Open, event: yaml.ScalarEvent, line: int) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(event)
        if tag == _MERGE:
            parent.merging = True
            parent.key_line = line
            return
        key = event.value if tag in (_STR, _VALUE) else str(self._scalar(event, line, parent.path))
        self._set_key(parent, key, line)
        self._anchor(event, _Built(Located(key, line), 1, 0))

    def _alias_key(self, parent: _Open, built: _Built, line: int) -> None:
        if isinstance(built.loc.value, dict | list):
            raise Problem(line, parent.path, "a key must be a plain string")
        self._set_key(parent, str(built.loc.value), line)

    def _set_key(self, parent: _Open, key: str, line: int) -> None:
        items = parent.items
        assert isinstance(items, dict)
        if key in items:
            first = items[key].line
            raise Problem(line, parent.child_path(key), f"duplicate key (first at line {first})")
        parent.key = key
        parent.key_line = line

    def _add(self, parent: _Open, built: _Built, line: int) -> None:
        parent.size += built.size
        parent.height = max(parent.height, built.height)
        if isinstance(parent.items, list):
            parent.items.append(built.loc)
            return
        if parent.merging:
            parent.merging = False
            parent.merges.extend(_merge_sources(built.loc, parent.key_line, parent.path))
            return
        assert parent.key is not None
        parent.items[parent.key] = Located(built.loc.value, parent.key_line)
        parent.key = None

    def _alias(self, event: yaml.AliasEvent, line: int, parent: _Open | None) -> _Built:
        anchor = event.anchor
        if anchor not in self.anchors:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias {anchor!r}", _mark(event.start_mark)
            )
        built = self.anchors[anchor]
        path = "" if parent is None else parent.child_path(parent.key)
        if built is None:
            raise Problem(
                line, path, f"*{anchor} stands inside its own anchor: it nests without end"
            )
        depth = 0 if parent is None else parent.depth + 1
        if depth + built.height > MAX_DEPTH:
            raise Problem(line, path, f"nested more than {MAX_DEPTH} levels deep")
        self._count(built.size, line, path)
        return built

    def _reserve(self, event: yaml.NodeEvent) -> None:
        anchor = event.anchor
        assert anchor is not None
        if anchor in self.anchor_marks:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchor_marks[anchor],
                "second occurrence",
                _mark(event.start_mark),
            )
        self.anchor_marks[anchor] = event.start_mark
        self.anchors[anchor] = None

    def _anchor(self, event: yaml.NodeEvent, built: _Built) -> None:
        if event.anchor is not None:
            self._reserve(event)
            self.anchors[event.anchor] = built

    def _count(self, n: int, line: int, path: str) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise Problem(
                line, path, f"more than {MAX_NODES} values (aliases expanding without end?)"
            )

    def _resolve(self, event: yaml.ScalarEvent) -> str:
        tag: str = self._loader.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, event.value, event.implicit
        )
        return tag

    def _scalar(self, event: yaml.ScalarEvent, line: int, path: str) -> Any:
        self._count(1, line, path)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(event)
        if tag == _STR:
            return event.value  # the common case, without building a node
        marks: tuple[Any, Any] = (event.start_mark, event.end_mark)
        node = yaml.ScalarNode(tag, event.value, *marks, event.style)
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            # e.g. an unknown tag such as !!python/object: say what, not PyYAML's marks
            raise Problem(line, path, f"invalid YAML value: {exc.problem}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            # a scalar PyYAML cannot construct, e.g. a timestamp like 2026-13-45
            raise Problem(line, path, f"invalid YAML value: {exc}") from None
        finally:
            self._loader.constructed_objects.clear()


def _mark(mark: Any) -> Any:
    """libyaml's marks and PyYAML's have the same fields; the stubs know only one."""
    return mark


def _line(event: yaml.Event) -> int:
    mark: Any = event.start_mark
    return int(mark.line) + 1


def _merge_sources(loc: Located, line: int, path: str) -> list[dict[str, Located]]:
    """The mappings a ``<<`` value merges: one mapping or a list of them."""
    if isinstance(loc.value, dict):
        return [loc.value]
    if isinstance(loc.value, list) and all(isinstance(i.value, dict) for i in loc.value):
        return [i.value for i in loc.value]
    raise Problem(line, path, "`<<` merges a mapping or a list of mappings only")


def _merged(sources: list[dict[str, Located]], own: dict[str, Located]) -> dict[str, Located]:
    """YAML's merge keys: the mapping's own keys win, then earlier sources over later."""
    out: dict[str, Located] = {}
    for source in reversed(sources):
        out.update(source)
    out.update(own)
    return out


def read_source(path: str) -> tuple[str, bytes]:
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


def parse_yaml(name: str, raw: bytes) -> Located:
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
        root = _build(text)
    except Problem as p:
        raise ConfigError([format_problem(name, p)]) from None
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
    if root is None:
        raise ConfigError([f"{name}:1: the file is empty: expected a mapping with `probes:`"])
    return root


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _build(text: str) -> Located | None:
    """Build with libyaml's parser when present (10x faster than PyYAML's own); on a
    YAML error, parse again in pure Python, whose messages we pin and which say more."""
    if _FAST_LOADER is not None:
        try:
            return Builder().build(yaml.parse(text, Loader=_FAST_LOADER))
        except yaml.YAMLError:
            pass
    return Builder().build(yaml.parse(text, Loader=yaml.SafeLoader))


def format_problem(name: str, p: Problem) -> str:
    where = f"{p.path}: " if p.path else ""
    return f"{name}:{p.line}: {where}{p.message}"
