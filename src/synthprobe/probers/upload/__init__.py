"""Kind ``upload``: a generated payload sent as multipart, optionally verified and
cleaned up. This module is what the config and ``probe list`` know of the kind; the
prober is in ``prober.py``, imported on first use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import TOKEN_RE, Reader, check_url, mapping
from synthprobe.jsonpath import fill_template, parse_json_path, placeholders
from synthprobe.models import Reason
from synthprobe.probers.kind import KindInfo
from synthprobe.redact import Redactor
from synthprobe.steps import KindStep
from synthprobe.units import format_size

UPLOAD_KEYS = {"size", "field", "filename", "content_type", "verify_url", "cleanup"}
CLEANUP_KEYS = {"method", "url"}


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """The generated payload an ``upload`` probe sends as multipart."""

    size: int = 256 * 1024
    """Bytes of generated payload."""
    field: str = "file"
    """Multipart field name."""
    filename: str = "probe.bin"
    """File name sent in the multipart part."""
    content_type: str = "application/octet-stream"
    """Content type of the part."""
    verify_url: str | None = None
    """Polled after the upload until it answers 2xx; ``{field}`` comes from the upload's
    JSON response (e.g. ``https://cdn.example.com/v/{id}``)."""
    cleanup_method: str = "DELETE"
    """Method of the cleanup request."""
    cleanup_url: str | None = None
    """Sent after the probe whatever its result, with the same ``{field}`` substitutions;
    never changes the result."""


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> UploadSpec:
    base = UploadSpec()
    if loc is None:
        return base
    m = mapping(loc, path, UPLOAD_KEYS)
    size = r.size(m["size"], f"{path}.size") if "size" in m else base.size
    if size > 1024**3:
        fail(m["size"], f"{path}.size", "must be at most 1GiB (the payload is held in memory)")
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
            cm = mapping(sub, f"{path}.cleanup", CLEANUP_KEYS)
            if "url" not in cm:
                fail(sub, f"{path}.cleanup", 'missing required key "url"')
            cleanup_url = r.text(cm["url"], f"{path}.cleanup.url")
            if "method" in cm:
                cleanup_method = r.text(cm["method"], f"{path}.cleanup.method").upper()
                if not TOKEN_RE.match(cleanup_method):
                    fail(cm["method"], f"{path}.cleanup.method", "bad HTTP method")
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


def _check_template(loc: Located, path: str, template: str) -> None:
    """A URL with ``{field}`` placeholders: each must be a JSON path; the rest a URL."""
    for field_path in placeholders(template):
        try:
            parse_json_path(field_path)
        except ValueError as exc:
            fail(loc, path, f"placeholder {{{field_path}}}: {exc}")
    check_url(loc, path, fill_template(template, lambda _: "x"), ("http", "https"), "upload")


def describe(options: UploadSpec, redactor: Redactor) -> dict[str, Any]:
    """Every field, the size as people write it."""
    return {
        "size": format_size(options.size),
        "field": options.field,
        "filename": options.filename,
        "content_type": options.content_type,
        "verify_url": options.verify_url,
        "cleanup_method": options.cleanup_method,
        "cleanup_url": options.cleanup_url,
    }


VERIFY = KindStep("verify", Reason.TIMEOUT_TOTAL, "uploaded media not available within {t}")
"""Waiting between polls of ``verify_url``."""

KINDS = (
    KindInfo(
        name="upload",
        prober="synthprobe.probers.upload.prober:UploadProber",
        default_method="POST",
        block="upload",
        parse_block=parse,
        describe_block=describe,
        steps=(VERIFY,),
        journeys=True,  # the upload as the first step: upload, then watch it play
    ),
)
