"""What makes a kind a kind: one frozen ``KindInfo``, declared beside its prober.

The config reads a kind's block and URL schemes from it, ``probe list`` its block's
description, the classifier its steps' timeouts, and the runner its prober. Nothing
else knows the kinds by name (the model is blackbox_exporter's ``Probers`` map,
extended to the config).

This module is light on purpose: the config imports it, and a run of ``probe
validate`` must not import httpx. The prober itself is named, and imported on first use.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthprobe.observes import Observes
from synthprobe.steps import KindStep

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from synthprobe.config.nodes import Located
    from synthprobe.config.readers import Reader
    from synthprobe.probers.base import Prober
    from synthprobe.redact import Redactor

BlockParser = Callable[["Reader", "Located | None", str, "Located"], Any]
"""(reader, the merged block or None when absent, its key path, the probe's node)
-> the kind's options, stored in ``ProbeSpec.options``. Raise through ``fail``."""
BlockDescriber = Callable[[Any, "Redactor"], dict[str, Any]]
"""The options as ``probe list --format json`` shows them."""
UrlCheck = Callable[["SplitResult"], str | None]
"""A kind's own rule for its URLs beyond the scheme: the problem, or None."""


@dataclass(frozen=True, slots=True)
class ControlForm:
    """How a kind serves as a vantage control (``settings.controls``): ``dns:NAME``,
    ``tcp:HOST:PORT``. An http(s) URL is a control of the default kind."""

    prefix: str
    """``dns:``: what a control of this kind starts with."""
    usage: str
    """``dns:NAME``: the form, for a problem's message."""
    check: Callable[[str], bool]
    """Whether the rest after the prefix is well formed."""
    spec: Callable[[str], tuple[str, Any]]
    """The rest -> (the probe's URL, its options)."""


def describe_fields(options: Any, redactor: Redactor) -> dict[str, Any]:
    """Every field of an options dataclass that is set, strings masked."""
    return {
        k: redactor.text(v) if isinstance(v, str) else v
        for k, v in dataclasses.asdict(options).items()
        if v is not None
    }


@dataclass(frozen=True, slots=True)
class KindInfo:
    """Everything synthprobe knows about one kind."""

    name: str
    """The ``kind:`` value in configs and results."""
    prober: str
    """``module:Class`` of its prober, imported on first use."""
    schemes: tuple[str, ...] = ("http", "https")
    """URL schemes the kind accepts."""
    default_method: str = "GET"
    """The ``method`` of results when the config gives none."""
    block: str | None = None
    """Its config block's key (``live:``), merged from ``defaults`` key by key."""
    parse_block: BlockParser | None = None
    """Reads the block; called even when the block is absent (with None)."""
    describe_block: BlockDescriber = describe_fields
    """How ``probe list`` shows the options."""
    steps: tuple[KindStep, ...] = ()
    """Steps the kind adds to an attempt's clock, each with what a deadline cutting it
    means."""
    negotiates_http: bool = True
    """Speaks HTTP through ``probers/exchange.py``: ``http_version`` applies, and every
    result records ``details.http_version``."""
    check_url: UrlCheck | None = None
    """Extra URL rule (a tcp:// URL needs a port), checked by the config."""
    url_has_host: bool = True
    """False where a URL may name no host (``dns:NAME`` asks the system's resolver)."""
    observes: Observes = Observes.RESPONSE
    """What its prober observes (a response, a reply, answers, segments): the one
    declaration from which the config knows the ``expect`` keys it can judge and the
    runner the observation its prober must return (``expect.OBSERVED``)."""
    journeys: bool = False
    """Takes ``steps``, ``capture`` and ``mask`` (a user's path after its own request)."""
    request_body: bool = False
    """Takes ``json:`` or ``body:`` for its own request."""
    control: ControlForm | None = None
    """How a control of this kind is written and probed; None: not a control kind."""
    kernel_timed: bool = False
    """A probe of this kind (without ``steps`` or its own ``resolver``) is one HTTP
    exchange timed by the kernel's clocks (probers/netstream.py): a busy event loop does
    not skew its timings, so the runner need not slow down for it."""

    def load_prober(self) -> Prober[Any]:
        # Any: the options' type is the kind's own (its parser made them, its prober
        # takes them); the registry holds every kind
        module, _, cls = self.prober.partition(":")
        prober: Prober[Any] = getattr(importlib.import_module(module), cls)()
        return prober
