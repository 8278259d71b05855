"""The status page rendered by a real browser: Debian's headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from synthprobe.cli import app
from synthprobe.output.html import BUDGET_COLOURS, COLOURS

from .test_report import planted

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, profile: Path, width: int, height: int) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (`make test` installs the Debian package as root)")
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )


def colours_in(png: Path) -> set[tuple[int, int, int]]:
    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return {colour for _count, colour in colours}  # type: ignore[misc]


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(1000, 1100), (390, 1600)], ids=["desktop", "phone"])
def test_status_page_renders_in_chromium(tmp_path: Path, width: int, height: int) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(r) + "\n" for r in planted()))
    page = tmp_path / "status.html"
    result = CliRunner().invoke(app, ["report", str(history), "--html", str(page)])
    assert result.exit_code == 0, result.output
    png = tmp_path / "status.png"
    screenshot(page, png, tmp_path / "profile", width, height)
    with Image.open(png) as image:
        assert image.size == (width, height)
    seen = colours_in(png)
    # the planted outages must be visible: ok, server, dns and network cells
    for name in ("ok", "server", "dns", "network"):
        assert rgb(COLOURS[name]) in seen, f"no {name} colour on the page"


def test_status_page_is_self_contained(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(r) + "\n" for r in planted()))
    page = tmp_path / "status.html"
    CliRunner().invoke(app, ["report", str(history), "--html", str(page)])
    text = page.read_text()
    for forbidden in ("<script", "<link", "@import", "url(", "src=", "http://", "https://"):
        assert forbidden not in text, forbidden


SLO_CONFIG = """\
version: 1
defaults:
  slo: {objective: 95%, window: 6h}
probes:
  - {name: feed-home, kind: feed, url: "http://127.0.0.1/feed"}
  - {name: upload-avatar, kind: upload, url: "http://127.0.0.1/upload"}
"""


def _budget_page(tmp_path: Path) -> Path:
    """The planted history at 95% over 6h: feed-home overspent (45 bad of 36 allowed),
    upload-avatar with two thirds of its budget left (6 of 18)."""
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(r) + "\n" for r in planted()))
    config = tmp_path / "probes.yaml"
    config.write_text(SLO_CONFIG)
    page = tmp_path / "status.html"
    args = ["report", str(history), "--config", str(config), "--until", "2026-11-22T06:00:00Z"]
    result = CliRunner().invoke(app, [*args, "--html", str(page)])
    assert result.exit_code == 0, result.output
    return page


def test_status_page_shows_each_probes_budget(tmp_path: Path) -> None:
    text = _budget_page(tmp_path).read_text()
    budgets = text.split("<h2>Error budgets</h2>", 1)[1].split("<h2>Outages</h2>", 1)[0]
    feed, upload = budgets.split('class="name">')[1:]
    assert feed.startswith("feed-home") and "budget exhausted (25.0% over)" in feed
    assert upload.startswith("upload-avatar") and "66.7% of the error budget left" in upload
    assert "gone by 2026-11-22T18:00:00Z" in upload
    assert budgets.count('<svg class="burn"') == 2 and budgets.count('<svg class="meter"') == 2
    for forbidden in ("<script", "<link", "url(", "src=", "http://", "https://"):
        assert forbidden not in budgets, forbidden


@pytest.mark.slow
def test_status_page_budget_renders_in_chromium(tmp_path: Path) -> None:
    page = _budget_page(tmp_path)
    png = tmp_path / "budget.png"
    screenshot(page, png, tmp_path / "profile", 1000, 1700)
    seen = colours_in(png)
    # the burn-down and meters: budget left, spent, and feed-home's overspending
    for name, colour in BUDGET_COLOURS.items():
        assert rgb(colour) in seen, f"no {name} budget colour on the page"


def test_status_page_budget_without_valid_results_says_no_data(tmp_path: Path) -> None:
    """An SLO window with no valid result in it is no data, never a full budget."""
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(r) + "\n" for r in planted()))
    page = tmp_path / "status.html"
    args = ["report", str(history), "--slo", "99%", "--window", "1h"]
    result = CliRunner().invoke(
        app, [*args, "--until", "2026-11-23T12:00:00Z", "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    budgets = page.read_text().split("<h2>Error budgets</h2>", 1)[1].split("<h2>Outages", 1)[0]
    assert budgets.count("no data in the window") == 2  # feed-home, upload-avatar
    assert "budget left" not in budgets and "<svg" not in budgets
