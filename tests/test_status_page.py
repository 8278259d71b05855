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
from synthprobe.output.html import COLOURS

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
