"""Delivery of a run's events through Apprise: one message per target per run.

Apprise knows a hundred services (``json://``, ``mailto://``, ``slack://``,
``ntfy://``...); we only ever hand it a URL, a title and a body. Each target is sent to
in a daemon thread and waited for at most ``timeout`` seconds: a hung mail server
costs a run that long, never its exit (the thread is abandoned; if it delivers after
all, the event was already kept pending and goes out once more: at least once).

A notify URL is never printed as written: only as Apprise itself renders it with
``privacy=True`` (each plugin knows which of its own parts are secrets: ``pass=``,
``token=``, ``apikey=``... ; a list of words of ours would always miss one), or, when
Apprise cannot load it, as its scheme alone; and that rendering, as every message
about a target, then passes the run's redactor (``outbox.py``, ``config/``): a
``${VAR}`` in a part Apprise does not hide, the path of a ``json://`` URL, is a secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

DEFAULT_TIMEOUT = 10.0


def target_id(url: str) -> str:
    """What the state file keeps of a target: a hash, never the URL (it may hold a secret)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    problem: str = ""
    """Why it failed, from Apprise's own log (unmasked: mask before printing)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A notify URL as Apprise reads it."""

    plugin: Any
    """Apprise's plugin object; None when Apprise cannot use the URL."""
    problem: str
    """Apprise's own reason when it cannot ("" otherwise)."""
    shown: str
    """The URL as it may be printed: Apprise's privacy rendering, or ``scheme://...``."""


def load(url: str) -> Loaded:
    """Apprise's plugin for ``url``, with Apprise's reason when there is none."""
    import apprise

    capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
    plugin: Any = None
    problem = ""
    with capture as log:
        try:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=False)
        except Exception as exc:  # a plugin refusing its arguments says why in exc
            problem = str(exc) or type(exc).__name__
    if plugin is None:
        said = [line.strip() for line in log.getvalue().splitlines() if line.strip()]
        problem = problem or (said[-1] if said else "Apprise cannot load this URL")
        # Apprise's log echoes the URL in its own masking, which keeps the first and
        # last character of a secret: only the scheme is shown
        from apprise.utils.cwe312 import cwe312_loggable

        scheme_only = _scheme_only(url)
        problem = problem.replace(cwe312_loggable(url, True), scheme_only)  # type: ignore[no-untyped-call]
        problem = scrub(problem, url, scheme_only)
        scheme = url.partition("://")[0].lower()
        if scheme and scheme not in _schemes():
            problem = f"no Apprise service has the scheme {scheme}:// (Apprise: {problem})"
        return Loaded(None, problem, scheme_only)
    return Loaded(plugin, "", str(plugin.url(privacy=True)))


_PIECES = re.compile(r"[/:@?&#;,\s]+")


def scrub(text: str, url: str, shown: str) -> str:
    """Apprise's message about ``url`` with every piece of the URL that its privacy
    rendering ``shown`` leaves out replaced by ``***``: a plugin's reason may echo a
    token it refused ("An invalid Slack Token (xoxb-...)"), and what Apprise itself
    hides is, by its own judgement, a secret. A URL it cannot load shows nothing."""
    _scheme, _sep, rest = url.partition("://")
    hidden: set[str] = set()
    for piece in _PIECES.split(rest):
        value = piece.partition("=")[2] if "=" in piece else piece
        for form in (value, unquote(value)):
            if len(form) >= 3 and form not in shown and quote(form, safe="") not in shown:
                hidden.add(form)
    for piece in sorted(hidden, key=len, reverse=True):  # a longer one first, whole
        text = text.replace(piece, "***")
    return text


def _schemes() -> set[str]:
    from apprise.manager_plugins import NotificationManager

    manager = NotificationManager()  # type: ignore[no-untyped-call]
    return {str(s).lower() for s in manager.schemas()}  # type: ignore[no-untyped-call]


def shown(url: str) -> str:
    """``url`` as it may be printed (warnings, errors, cron mail)."""
    try:
        return load(url).shown
    except Exception:  # printing a URL must never end a run
        return _scheme_only(url)


def _scheme_only(url: str) -> str:
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://..." if sep else "(not a URL)"


def send(url: str, title: str, body: str, timeout: float = DEFAULT_TIMEOUT) -> Delivery:
    """Send one message to one Apprise URL within ``timeout`` seconds. The body is
    plain text, one event a line: Apprise then keeps its line breaks (a mail is
    text/plain as written; without a format Apprise takes it for the service's own,
    HTML for mail, and three events run into one paragraph)."""
    outcome: list[Delivery] = []

    def work() -> None:
        import apprise

        try:
            loaded = load(url)
            if loaded.plugin is None:
                outcome.append(Delivery(False, loaded.problem))
                return
            capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
            with capture as log:
                notifier = apprise.Apprise()
                notifier.add(loaded.plugin)
                ok = bool(
                    notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
                )
                last = [line for line in log.getvalue().splitlines() if line.strip()]
                problem = scrub(last[-1], url, loaded.shown) if last else "refused"
                outcome.append(Delivery(ok, "" if ok else problem))
        except Exception as exc:  # a plugin's bug must not end the run
            problem = scrub(f"{type(exc).__name__}: {exc}", url, _scheme_only(url))
            outcome.append(Delivery(False, problem))

    thread = threading.Thread(target=work, daemon=True, name="synthprobe-notify")
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or not outcome:
        return Delivery(False, f"no answer within {timeout:g}s")
    return outcome[0]
