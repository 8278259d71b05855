"""Journeys in the config (``config/journeys.py``): every bad header and capture is
reported at its own line and key; steps take what their probe sets, and the
dataclasses' defaults for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthprobe.config import load_sources
from synthprobe.errors import ConfigError
from synthprobe.models import Journey, JourneyStep, ProbeSpec

from .commands import run_probe

PROBE = "probes:\n  - name: a\n    url: http://127.0.0.1/\n"
STEP_LINES = "    steps:\n      - {name: s, url: 'http://127.0.0.1/s'}\n"

EVERY_BAD_ITEM = [
    pytest.param(
        PROBE + "    headers:\n"
        "      Bad Name: x\n"
        "      X-Ok: fine\n"
        '      X-Lines: "a\\r\\nInjected: yes"\n'
        "      X-Map: {a: 1}\n",
        [
            "t.yaml:5: probes[0].headers.Bad Name: bad header name",
            "t.yaml:7: probes[0].headers.X-Lines: a header value cannot span lines",
            "t.yaml:8: probes[0].headers.X-Map: expected a string, got a mapping",
        ],
        id="probe-3-bad-headers",
    ),
    pytest.param(
        PROBE + "    steps:\n"
        "      - name: s\n"
        "        url: http://127.0.0.1/s\n"
        "        headers:\n"
        '          "X(": x\n'
        '          X-Lines: "a\\nb"\n'
        "          X-List: [1]\n",
        [
            "t.yaml:8: probes[0].steps[0].headers.X(: bad header name",
            "t.yaml:9: probes[0].steps[0].headers.X-Lines: a header value cannot span lines",
            "t.yaml:10: probes[0].steps[0].headers.X-List: expected a string, got a list",
        ],
        id="step-3-bad-headers",
    ),
    pytest.param(
        PROBE + "    expect:\n"
        "      headers:\n"
        "        etag: '('\n"
        "        server: ok\n"
        "        x-a: 'a{2,1}'\n"
        "        x-b: [1]\n",
        [
            "t.yaml:6: probes[0].expect.headers.etag: bad regex '(': missing ) at position 1",
            "t.yaml:8: probes[0].expect.headers.x-a: bad regex 'a{2,1}': "
            "min repeat greater than max repeat at position 2",
            "t.yaml:9: probes[0].expect.headers.x-b: expected a string, got a list",
        ],
        id="expect-3-bad-headers",
    ),
    pytest.param(
        PROBE + '    capture:\n      token: "body:token"\n      ok: status\n      1st: status\n',
        [
            "t.yaml:5: probes[0].capture.token: bad capture 'body:token': "
            "use json:PATH, header:NAME, regex:PATTERN or status",
            "t.yaml:7: probes[0].capture.1st: "
            "a capture name is letters, digits and _ (it is used as {{name}})",
        ],
        id="probe-2-bad-captures",
    ),
    pytest.param(
        PROBE + "    steps:\n"
        "      - name: s\n"
        "        url: http://127.0.0.1/s\n"
        "        capture:\n"
        '          id: "regex:("\n'
        '          at: "json:a[x"\n',
        [
            "t.yaml:8: probes[0].steps[0].capture.id: bad regex '(': missing ) at position 1",
            "t.yaml:9: probes[0].steps[0].capture.at: bad JSON path 'a[x' at character 2",
        ],
        id="step-2-bad-captures",
    ),
    pytest.param(
        PROBE + '    capture: {token: "body:token"}\n'
        "    mask: [nobody]\n"
        "    steps:\n"
        "      - name: s\n"
        "        url: http://127.0.0.1/s\n"
        '        headers: {"X(": x}\n'
        "      - name: t\n"
        "        url: http://127.0.0.1/{{later}}\n",
        [
            "t.yaml:4: probes[0].capture.token: bad capture 'body:token': "
            "use json:PATH, header:NAME, regex:PATTERN or status",
            "t.yaml:5: probes[0].mask[0]: no step captures nobody",
            "t.yaml:9: probes[0].steps[0].headers.X(: bad header name",
            "t.yaml:11: probes[0].steps[1].url: {{later}}: no earlier step captures later",
        ],
        id="a-bad-capture-hides-no-step",
    ),
    pytest.param(
        "probes:\n  - name: a\n    url: http://127.0.0.1/{{early}}\n"
        '    capture: {id: "regex:("}\n' + STEP_LINES,
        [
            "t.yaml:3: probes[0]: {{early}}: no earlier step captures early",
            "t.yaml:4: probes[0].capture.id: bad regex '(': missing ) at position 1",
        ],
        id="a-placeholder-in-the-first-request-hides-no-capture",
    ),
]


@pytest.mark.parametrize(("text", "expected"), EVERY_BAD_ITEM)
def test_every_bad_header_and_capture_is_reported(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_sources([("t.yaml", text.encode())], env={})
    assert info.value.problems == expected


def test_a_bad_capture_is_exit_2_naming_line_and_key_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "journey.yaml"
    [text] = [p.values[0] for p in EVERY_BAD_ITEM if p.id == "step-2-bad-captures"]
    path.write_text(str(text))
    result = run_probe("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{path}:8: probes[0].steps[0].capture.id: bad regex" in result.stderr
    assert f"{path}:9: probes[0].steps[0].capture.at: bad JSON path" in result.stderr


def _journey(text: str) -> tuple[ProbeSpec, Journey]:
    [spec] = load_sources([("t.yaml", text.encode())], env={}).probes
    assert spec.journey is not None
    return spec, spec.journey


STEP = STEP_LINES

INHERITED = [
    pytest.param(
        PROBE + STEP,
        {"method": "GET", "follow_redirects": True, "max_body": 10 * 1024 * 1024},
        id="probe-says-nothing",
    ),
    pytest.param(
        PROBE + "    follow_redirects: false\n    max_body: 1KiB\n    method: POST\n" + STEP,
        {"method": "GET", "follow_redirects": False, "max_body": 1024},
        id="probe-sets-them",
    ),
    pytest.param(
        PROBE
        + "    follow_redirects: false\n    max_body: 1KiB\n"
        + "    steps:\n      - name: s\n        url: http://127.0.0.1/s\n"
        + "        method: put\n        follow_redirects: true\n        max_body: 2KiB\n",
        {"method": "PUT", "follow_redirects": True, "max_body": 2048},
        id="step-sets-them",
    ),
]


@pytest.mark.parametrize(("text", "expected"), INHERITED)
def test_a_step_takes_its_probes_values_then_the_dataclass_defaults(
    text: str, expected: dict[str, object]
) -> None:
    _, journey = _journey(text)
    [step] = journey.steps
    assert {key: getattr(step, key) for key in expected} == expected


def test_the_dataclasses_hold_the_defaults_the_config_leaves_out() -> None:
    spec, journey = _journey(PROBE + STEP)
    assert journey.main == Journey().main == "main"
    assert journey.capture == () and journey.mask == ()
    # the step's own defaults are the probe's: a step inherits what its probe would have
    step = JourneyStep("s", url="u")
    assert (step.follow_redirects, step.max_body) == (spec.follow_redirects, spec.max_body)
    assert spec.http_version is ProbeSpec.__dataclass_fields__["http_version"].default


def test_step_name_capture_and_mask_are_read() -> None:
    _, journey = _journey(
        PROBE + "    step_name: login\n    capture: {token: 'json:token'}\n    mask: token\n" + STEP
    )
    assert journey.main == "login"
    assert [(c.name, c.source, c.arg) for c in journey.capture] == [("token", "json", "token")]
    assert journey.mask == ("token",)
