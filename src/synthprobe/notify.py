"""Delivery of a run's events through Apprise: one message per target per run.

Apprise knows a hundred services (``json://``, ``mailto://``, ``slack://``,
``ntfy://``...); we only ever hand it a URL, a title and a body. Each target is sent to
in a daemon thread and waited for at most ``timeout`` seconds: a hung mail server
costs a run that long, never its exit (the thread is abandoned; if it delivers after
all, the event was already kept pending and goes out once more: at least once).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0


def target_id(url: str) -> str:
    """What the state file keeps of a target: a hash, never the URL (it may hold a secret)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    problem: str = ""
    """Why it failed, from Apprise's own log (unmasked: mask before printing)."""


def send(url: str, title: str, body: str, timeout: float = DEFAULT_TIMEOUT) -> Delivery:
    """Send one message to one Apprise URL within ``timeout`` seconds."""
    outcome: list[Delivery] = []

    def work() -> None:
        import apprise

        try:
            capture = apprise.LogCapture(level=apprise.logging.WARNING)  # type: ignore[no-untyped-call]
            with capture as log:
                notifier = apprise.Apprise()
                if not notifier.add(url):
                    outcome.append(Delivery(False, "not an Apprise URL Apprise knows"))
                    return
                ok = bool(notifier.notify(title=title, body=body))
                last = [line for line in log.getvalue().splitlines() if line.strip()]
                outcome.append(Delivery(ok, "" if ok else (last[-1] if last else "refused")))
        except Exception as exc:  # a plugin's bug must not end the run
            outcome.append(Delivery(False, f"{type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=work, daemon=True, name="synthprobe-notify")
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or not outcome:
        return Delivery(False, f"no answer within {timeout:g}s")
    return outcome[0]
