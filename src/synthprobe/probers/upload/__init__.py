"""Kind ``upload``: a generated payload sent as multipart, optionally verified and
cleaned up. This module is what the config and ``probe list`` know of the kind; the
prober is in ``prober.py``, imported on first use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import Field, Reader, Table, check_url, http_method
from synthprobe.jsonpath import fill_template, parse_json_path, placeholders
from synthprobe.models import Reason
from synthprobe.probers.kind import KindInfo
from synthprobe.redact import Redactor
from synthprobe.steps import KindStep
from synthprobe.units import format_size


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


def _size(r: Reader, loc: Located, path: str) -> int:
    size = r.size(loc, path)
    if size > 1024**3:
        fail(loc, path, "must be at most 1GiB (the payload is held in memory)")
    return size


def _template(r: Reader, loc: Located, path: str) -> str:
    url = r.text(loc, path)
    _check_template(loc, path, url)
    return url


CLEANUP = Table(Field("url", _template, required=True), Field("method", http_method))


def _cleanup(r: Reader, loc: Located, path: str) -> tuple[str | None, str]:
    """``cleanup: URL`` or ``cleanup: {url, method}``: (method or None, URL)."""
    if isinstance(loc.value, str):
        return None, _template(r, loc, path)
    block = CLEANUP.read(r, loc, path)
    block.done()
    return block.values.get("method"), block.values["url"]


FIELDS = Table(
    Field("size", _size),
    Field("field", Reader.text),
    Field("filename", Reader.text),
    Field("content_type", Reader.text),
    Field("verify_url", _template),
    Field("cleanup", _cleanup, attr=None),
)


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> UploadSpec:
    if loc is None:
        return UploadSpec()
    block = FIELDS.read(r, loc, path)
    block.done()
    fields = block.fields()
    if "cleanup" in block.values:
        method, fields["cleanup_url"] = block.values["cleanup"]
        if method is not None:
            fields["cleanup_method"] = method
    return UploadSpec(**fields)


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
