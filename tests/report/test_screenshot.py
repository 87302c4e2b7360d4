"""How report.html renders: a real headless browser (Debian's `chromium`, installed by
`make system-deps`) takes a screenshot, and the picture must hold the page, not a blank."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.drift_nights import DriftNights

WIDTH, HEIGHT = 1100, 2400
CHART_BLUE = (0x25, 0x63, 0xEB)  # `report.html.CURRENT`: only the SVG bars are this colour
WARN_AMBER = (0xD9, 0x77, 0x06)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the report screenshot needs Debian's chromium: `make system-deps` (as root)"
    return found


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    args = [
        _chromium(),
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-dev-shm-usage",  # containers (CI) often give /dev/shm 64 MB
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    if os.geteuid() == 0:  # chromium refuses to run as root inside its sandbox (CI runs as root)
        args.insert(1, "--no-sandbox")
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _near(pixels: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(pixels.astype(int) - np.array(colour)).max(axis=-1) <= tol).sum())


def test_the_report_renders_in_a_headless_browser(drift_nights: object, tmp_path: Path) -> None:
    assert isinstance(drift_nights, DriftNights)
    png = tmp_path / "report.png"
    proc = screenshot(drift_nights.day2 / "report.html", png, tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    image = Image.open(png)
    assert image.size == (WIDTH, HEIGHT)
    pixels = np.asarray(image.convert("RGB"))
    non_white = (pixels < 245).any(axis=-1).mean()
    assert 0.05 < non_white < 0.9, non_white  # a page, neither blank nor one colour
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, charts, not a flat fill
    assert _near(pixels, CHART_BLUE) > 2000  # the inline SVG charts were drawn
    assert _near(pixels, WARN_AMBER) > 200  # the drifted features' bars past the threshold
    # The top of the page (title, warnings) is not empty either.
    assert (pixels[:300] < 200).any(axis=-1).mean() > 0.01
