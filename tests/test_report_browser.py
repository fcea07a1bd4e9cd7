"""The headline grid's report.html in a real headless Chromium (Playwright driving the system's chromium, which
.ci/setup installs): it renders, its console stays quiet, it requests nothing but its own file, and its job table
holds every job with its phase."""

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from conftest import ROOT, TINY
from grok_sweep.store.layout import REPORT_FILE, SUMMARY_FILE

CHROMIUM = os.environ.get("GROK_SWEEP_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium here: bash .ci/setup installs it (apt), or set GROK_SWEEP_CHROMIUM"
)
def test_the_headline_grids_report_renders_in_chromium_and_fetches_nothing(tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    tiny = [o for o in TINY if not o.startswith("train_ratio=")]
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "weight_decay=0.1,1.0", "train_ratio=0.2,0.3,0.5", *tiny,
           f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    url = (tmp_path / REPORT_FILE).as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console, requests = [], []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.wait_for_load_state("load")
        shot = page.screenshot(full_page=True)
        headings = page.locator("h2").all_inner_texts()
        rows = page.locator("section:has(h2:text-is('Jobs (6)')) tbody tr").all()
        cells = [r.locator("td").all_inner_texts() for r in rows]
        names = page.locator("section:has(h2:text-is('Jobs (6)')) thead th").all_inner_texts()
        loaded = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
        edges = page.evaluate("[...document.querySelectorAll('body, table')].map(e => e.getBoundingClientRect().right)")
        browser.close()
    assert not [m for m in console if m.startswith(("error", "pageerror"))], console
    assert all(u == url or u.startswith("data:") for u in requests), requests
    pixels = imread(io.BytesIO(shot))
    assert pixels.shape[0] > 1500 and np.mean(pixels[..., :3] < 0.9) > 0.05  # tall, and not a blank page
    assert headings[:5] == ["What was run", "Phase table", "Phase diagram", "Curves", "Jobs (6)"]
    assert loaded and all(loaded)  # every inlined figure decodes
    assert max(edges[1:]) <= edges[0] + 1, edges  # every table fits the page: long job names wrap at their commas
    summary = pd.read_parquet(tmp_path / SUMMARY_FILE)
    shown = {c[0]: c[names.index("phase")] for c in cells}
    assert shown == dict(zip(summary["job"], summary["phase"].astype(str), strict=True))
