"""The ``probe`` command line: parse options, call ``app``, map errors to exit codes.

No httpx and no YAML here: imports stay lazy so ``probe --help`` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

# httpx imports its own command line (click, rich and pygments: about 40 ms) whenever
# those are installed, and synthprobe never runs it. A None entry in sys.modules makes
# that import fail, and httpx falls back to a stub of its own.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import typer  # noqa: E402
import typer.core  # noqa: E402

from synthprobe import __version__  # noqa: E402
from synthprobe.models import ListFormat, RunFormat  # noqa: E402


class _Command(typer.core.TyperCommand):
    """Help as people write it: ``probe run [OPTIONS] CONFIG...``, and an argument shown
    by its name (typer 0.29 prints ``{CONFIG}...`` and ``CONFIG <list[str]>``).
    ``ctx`` is ``Any``: its type is in typer's private ``typer._click``, and the public
    ``typer.Context`` is narrower than the methods overridden here."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                pieces.append(f"{name}..." if param.nargs != 1 else name)
        return pieces

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        for param in params:
            if param.param_type_name == "argument":
                param.display_type_rich = lambda ctx=None: None
        return params


app = typer.Typer(
    name="probe",
    help="Synthetic availability prober: is it down, which part, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Configs = Annotated[
    list[str],
    typer.Argument(
        metavar="CONFIG",
        help="Config files (YAML); - reads stdin. Several merge.",
        show_default=False,
    ),
]
EXIT_CODES = (
    "Exit: 0 all passed, 1 a probe failed, 2 usage or config error, 3 every failure was "
    "this machine's (vantage down), 4 synthprobe failed on a probe (a bug: internal.error), "
    "130 interrupted."
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synthprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Synthetic availability prober: is it down, which part, and why."""


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    from synthprobe.units import MAX_DEADLINE, parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise typer.BadParameter("must be more than 0")
    if seconds > MAX_DEADLINE:  # the config's own bound: one rule for both
        raise typer.BadParameter(f"must be at most 24h, got {value!r}")
    return seconds


def _guarded(fn: object, *args: object) -> None:
    """Call an ``app`` function; turn synthprobe's own errors into red lines and exit 2."""
    from synthprobe.app import main_streams
    from synthprobe.errors import SynthprobeError

    streams = main_streams()
    try:
        code = fn(*args, streams)  # type: ignore[operator]
    except SynthprobeError as exc:
        for line in exc.lines():
            streams.err.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        if exc.hint:
            streams.err.print(f"hint: {exc.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    raise typer.Exit(code)


@app.command(cls=_Command, epilog=EXIT_CODES)
def run(
    configs: Configs,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            envvar="PROBE_OUTPUT",
            show_envvar=False,
            help="Append JSON lines to PATH (- for stdout; the table then "
            "goes to stderr). Default: $PROBE_OUTPUT, else settings.output, "
            "else probe-results.jsonl.",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "-c",
            "--concurrency",
            metavar="N",
            min=1,
            max=100_000,
            help="Most probes in flight at once (default 20).",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", metavar="SELECTOR", help="A probe name, a kind or tag:NAME. Repeatable."
        ),
    ] = None,
    location: Annotated[
        str | None,
        typer.Option(
            "--location",
            metavar="NAME",
            help="Vantage point recorded in every result (default: the host name).",
        ),
    ] = None,
    fmt: Annotated[
        RunFormat,
        typer.Option(
            "--format",
            help="table; json (a summary for scripts); quiet (nothing when all "
            "pass, one line per failure otherwise); changes (one line per event: down, "
            "up, still down).",
        ),
    ] = RunFormat.TABLE,
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="PATH", help="Write a JUnit XML report.")
    ] = None,
    prom: Annotated[
        str | None,
        typer.Option(
            "--prom",
            metavar="PATH",
            help="Write OpenMetrics for node_exporter's textfile collector (atomically).",
        ),
    ] = None,
    ignore_env_proxy: Annotated[
        bool,
        typer.Option(
            "--ignore-env-proxy",
            help="Connect directly even when HTTP_PROXY / HTTPS_PROXY are set.",
        ),
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout", metavar="DURATION", help="Override every probe's total deadline, e.g. 5s."
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries", metavar="N", min=0, max=100, help="Override every probe's retries."
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="PATH",
            help="State file (default: the output's path with .state.json).",
        ),
    ] = None,
    no_state: Annotated[
        bool,
        typer.Option("--no-state", help="Read and write no state: no events, no messages."),
    ] = False,
    maintenance: Annotated[
        bool,
        typer.Option(
            "--maintenance",
            help="This whole run is maintenance: results count neither up nor down.",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            max=64,
            help="Probe in N processes, one event loop each (for runs larger than one "
            "core can serve). Default 1.",
        ),
    ] = 1,
    otlp: Annotated[
        str | None,
        typer.Option(
            "--otlp",
            metavar="URL",
            help="Export traces and metrics over OTLP/HTTP to URL (/v1/traces, "
            "/v1/metrics), e.g. http://127.0.0.1:4318. Default: settings.otlp, else "
            "$OTEL_EXPORTER_OTLP_ENDPOINT, else none.",
        ),
    ] = None,
) -> None:
    """Run the probes, append JSON lines, print a summary."""
    from synthprobe.app.run import RunOptions, run_command

    opts = RunOptions(
        configs,
        output=output,
        concurrency=concurrency,
        only=only or (),
        location=location,
        format=fmt,
        junit=junit,
        prom=prom,
        env_proxy=False if ignore_env_proxy else None,
        workers=workers,
        timeout=_duration(timeout),
        retries=retries,
        state=state,
        no_state=no_state,
        maintenance=maintenance,
        otlp=otlp,
    )
    _guarded(run_command, opts)


@app.command(cls=_Command, epilog="Exit: 0 valid, 2 invalid.")
def validate(configs: Configs) -> None:
    """Check configs without sending anything; print the probes per kind."""
    from synthprobe.app.probes import validate_command

    _guarded(lambda io: validate_command(configs, io.out))


@app.command("list", cls=_Command, epilog="Exit: 0 valid, 2 invalid.")
def list_(
    configs: Configs,
    fmt: Annotated[ListFormat, typer.Option("--format")] = ListFormat.TABLE,
) -> None:
    """Show the probes as they will run: defaults merged, variables expanded, secrets masked."""
    from synthprobe.app.probes import list_command

    _guarded(lambda io: list_command(configs, io.out, fmt))


@app.command("slo-rules", cls=_Command, epilog="Exit: 0 written, 2 invalid config or no SLO.")
def slo_rules(
    configs: Configs,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write the rules to FILE."),
    ] = None,
) -> None:
    """Prometheus rules: error budget burn alerts for the probes' slo keys."""
    from synthprobe.app.slo_rules import slo_rules_command

    _guarded(slo_rules_command, configs, output)


@app.command(cls=_Command, epilog="Exit: 0 done, 2 usage error or unreadable file.")
def report(
    results: Annotated[
        list[str],
        typer.Argument(
            metavar="RESULTS.jsonl", help="JSON lines files; - reads stdin.", show_default=False
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="Start of the window: 24h, 90m or a time."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="WHEN", help="End of the window: a duration ago or a time."
        ),
    ] = None,
    probe: Annotated[
        list[str] | None,
        typer.Option("--probe", metavar="NAME", help="Only this probe. Repeatable."),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", metavar="KIND", help="Only this kind.")
    ] = None,
    location: Annotated[
        list[str] | None,
        typer.Option("--location", metavar="NAME", help="Only this location."),
    ] = None,
    fmt: Annotated[ListFormat, typer.Option("--format")] = ListFormat.TABLE,
    html: Annotated[
        str | None, typer.Option("--html", metavar="FILE", help="Write a status page.")
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option("--config", metavar="CONFIG", help="Judge the probes' slo keys. Repeatable."),
    ] = None,
    slo: Annotated[
        str | None,
        typer.Option("--slo", metavar="PERCENT", help="One objective for every probe: 99.9%."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", metavar="DURATION", help="The --slo window: 28d, 7d, 36h."),
    ] = None,
) -> None:
    """Availability, latency percentiles, failures by class, outage windows and SLOs."""
    from synthprobe.app.report import ReportOptions, report_command

    opts = ReportOptions(
        results,
        since,
        until,
        probe or (),
        kind or (),
        location or (),
        fmt,
        html,
        configs=config or (),
        slo=slo,
        window=window,
    )
    _guarded(report_command, opts)


@app.command(cls=_Command, epilog=EXIT_CODES)
def demo(
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the demo platform up instead of probing it.")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port for --serve.")
    ] = 8787,
    output: Annotated[
        str | None,
        typer.Option(
            "-o", "--output", metavar="PATH", help="Also append the demo's JSON lines to PATH."
        ),
    ] = None,
    fmt: Annotated[RunFormat, typer.Option("--format")] = RunFormat.TABLE,
    junit: Annotated[str | None, typer.Option("--junit", metavar="PATH")] = None,
) -> None:
    """Start the embedded demo platform on 127.0.0.1 and probe it with the bundled config."""
    from synthprobe.app.demo import demo_command
    from synthprobe.app.run import RunOptions

    opts = RunOptions((), output=output, format=fmt, junit=junit, location="demo")
    _guarded(lambda io: demo_command(opts, io, serve, port))


@app.command(
    cls=_Command,
    epilog="Exit: 0 stopped (Ctrl-C, SIGTERM) or all up (--until-up), 2 usage or config error.",
)
def watch(
    configs: Configs,
    every: Annotated[
        str,
        typer.Option("--every", metavar="DURATION", help="Start a round this often, e.g. 10s."),
    ] = "10s",
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", metavar="SELECTOR", help="A probe name, a kind or tag:NAME. Repeatable."
        ),
    ] = None,
    until_up: Annotated[
        bool,
        typer.Option("--until-up", help="Exit 0 as soon as every probe is up."),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="PATH", help="Also append JSON lines to PATH."),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", metavar="PATH", help="Read (never write) since-when from this state file."
        ),
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", metavar="NAME", help="Where this runs.")
    ] = None,
) -> None:
    """Re-run the probes every --every and show them live until Ctrl-C (a person's view:
    no notification, no state written). Without a terminal: one line per change."""
    from synthprobe.app.watch import WatchOptions, watch_command

    seconds = _duration(every)
    assert seconds is not None
    opts = WatchOptions(
        configs=configs,
        every=seconds,
        only=only or (),
        until_up=until_up,
        output=output,
        state=state,
        location=location,
    )
    _guarded(lambda io: watch_command(opts, io))


def main() -> None:
    app()
