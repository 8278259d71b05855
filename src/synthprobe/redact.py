"""Masking of secrets in everything synthprobe prints or writes.

A secret is any value that came from ``${VAR}`` in a config (unless the variable is
listed in ``settings.public_vars``), plus what is secret by its place: URL userinfo,
query parameters named like credentials, and credential headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
_SECRET_PARAM_RE = re.compile(
    r"([?&;](?:[^=&#]*?)(?:token|key|secret|signature|sig|password|passwd|auth)[^=&#]*=)([^&#]*)",
    re.IGNORECASE,
)
_USERINFO_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@?#\s'\"]*)@")
_MASKED_LOGIN_RE = re.compile(r"[^:]*:\*+")
"""A userinfo already masked, the password only (``probe:****``: Apprise's privacy
rendering of a notify URL): its login name is kept. A known secret in it is still masked."""
MIN_SECRET_LEN = 3
"""Shorter values are not masked: replacing every "1" in the output would hide everything
and protect nothing (a 2-character secret is no secret)."""


MIN_CAPTURED_SECRET_LEN = 6
"""Shortest value captured from a server that is masked (a 6-digit code is; "ok" is not)."""


def could_be_credential(value: str) -> bool:
    """A server's value worth masking: long enough, and not a plain word."""
    return len(value) >= MIN_CAPTURED_SECRET_LEN and not value.isalpha()


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: str) -> str:
    """Control characters out: line breaks and tabs become spaces (one result, one line),
    anything else (an escape sequence a server sent) is shown as ``\\xNN``."""

    def visible(m: re.Match[str]) -> str:
        c = m.group(0)
        return " " if c in "\r\n\t" else f"\\x{ord(c):02x}"

    return _CONTROL_RE.sub(visible, value)


def _userinfo(m: re.Match[str]) -> str:
    if _MASKED_LOGIN_RE.fullmatch(m.group(2)):
        return m.group(0)
    return f"{m.group(1)}{MASK}@"


class Redactor:
    """Replaces known secret values, and credentials in URLs, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_LEN:
                continue
            # a secret may come back percent-encoded inside a URL or an error message
            forms.update({secret, quote(secret, safe=""), quote_plus(secret), quote(secret)})
        # longest first, so a secret containing another is masked whole
        ordered = sorted((f for f in forms if len(f) >= MIN_SECRET_LEN), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._base: Redactor | None = None

    def adding(self, more: Iterable[str]) -> Redactor:
        """A redactor that also masks ``more``: values captured during a probe (cookies a
        server set, captures a journey marks ``mask``). The server chose them, so a
        value is masked only when it could be a credential: at least
        ``MIN_CAPTURED_SECRET_LEN`` characters and not a plain word. Otherwise
        ``Set-Cookie: a=status; b=expected`` would blank words of our own messages."""
        combined = Redactor(v for v in more if could_be_credential(v))
        combined._base = self
        return combined

    def text(self, value: str) -> str:
        """Mask known secrets, and URL userinfo and credential-like query parameters
        wherever a URL appears (an exception message may echo one)."""
        masked = _USERINFO_RE.sub(_userinfo, value)
        masked = _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}{MASK}", masked)
        if self._pattern is not None:
            masked = self._pattern.sub(MASK, masked)
        if self._base is not None:
            masked = self._base.text(masked)
        return masked

    url = text

    def header(self, name: str, value: str) -> str:
        """A header value as it may be shown."""
        if name.lower() in SECRET_HEADERS:
            return MASK
        return self.text(value)
