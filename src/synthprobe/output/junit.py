"""JUnit XML: one testcase per probe, written atomically (temporary file + rename)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from synthprobe.models import Failure, ProbeResult, Vantage


def junit_xml(results: list[ProbeResult], run_id: str, location: str) -> bytes:
    """The report as bytes: a ``testsuites`` root with one ``testsuite``."""
    skipped = sum(r.vantage is Vantage.DOWN for r in results)
    # our own bug is a JUnit <error> (the test could not run), never a <failure>
    errors = sum(r.failure is Failure.INTERNAL for r in results)
    failures = sum(not r.ok for r in results) - skipped - errors
    seconds = sum((r.latency_ms or 0.0) for r in results) / 1000
    root = ET.Element(
        "testsuites",
        name="synthprobe",
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        time=f"{seconds:.3f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"synthprobe@{location}",
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run_id", value=run_id)
    ET.SubElement(props, "property", name="location", value=location)
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"synthprobe.{r.kind}",
            name=r.probe,
            time=f"{(r.latency_ms or 0.0) / 1000:.3f}",
        )
        if r.trace_id is not None:
            # the backend's trace of this probe's requests (docs/tracing.md); first, as
            # the JUnit schemas order a testcase's children
            traced = ET.SubElement(case, "properties")
            ET.SubElement(traced, "property", name="trace_id", value=r.trace_id)
        if r.vantage is Vantage.DOWN:
            ET.SubElement(case, "skipped", message=f"vantage down: {r.reason}: {r.error}")
        elif r.failure is Failure.INTERNAL:
            error = ET.SubElement(case, "error", message=r.error or "", type=r.reason or "")
            error.text = f"{r.method} {r.url}\n{r.error}\n"
        elif not r.ok:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{r.reason}: {r.error}",
                type=r.failure.value if r.failure else "failure",
            )
            failure.text = (
                # no response, no status: "-" (Python's "None" is no answer to a person)
                f"{r.method} {r.url}\nreason: {r.reason}\n"
                f"status: {'-' if r.status is None else r.status}\n"
                f"attempts: {r.attempts}\nerror: {r.error}\n"
                + (f"trace_id: {r.trace_id}\n" if r.trace_id else "")
            )
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
