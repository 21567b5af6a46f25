"""The documentation builds with warnings as errors, executing the tutorials, and its pages
need no internet: the quickstart's plots and live view draw in Chromium with every request
to another host refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import chromium
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"

# a script or a style sheet a page would fetch from elsewhere
REMOTE_ASSET = re.compile(r"<(?:script|link)\b[^>]*\s(?:src|href)=[\"']?(?:https?:)?//", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once for this module: (the html folder, the build's output)."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    pytest.importorskip("furo")
    out = tmp_path_factory.mktemp("docs") / "html"
    started = time.monotonic()
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=ROOT,
    )
    print(f"sphinx-build took {time.monotonic() - started:.0f} s")
    return out, build


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_docs_build_without_a_warning(site):
    out, build = site
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-8000:]
    assert "build succeeded." in log, log[-8000:]
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    for page in (
        "index.html",
        "getting-started.html",
        "hpc.html",
        "guide/schedulers.html",
        "api/study.html",
        "tutorials/quickstart.html",
        "tutorials/hpc-slurm.html",
        "benchmarks/index.html",
        "extensions/asynchpo-optuna.html",
    ):
        assert page in pages, sorted(pages)
    for page in sorted(pages):  # every script and style sheet is served from the site
        html = (out / page).read_text(errors="replace")
        assert not REMOTE_ASSET.findall(html), (page, REMOTE_ASSET.findall(html)[:3])
    api = (out / "api" / "study.html").read_text()
    assert 'id="asynchpo.Study.optimize"' in api and "max_concurrent" in api


@pytest.fixture(scope="module")
def served(site):
    out, build = site
    if build.returncode != 0:
        pytest.skip("the documentation did not build")
    port = chromium.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    chromium.wait_for_server(server, f"{url}/index.html", 30, lambda: "no http.server")
    yield url
    server.terminate()
    server.wait(10)


def _plots_in_quickstart() -> int:
    cells = json.loads(QUICKSTART.read_text())["cells"]
    return sum("study.plot." in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_quickstart_page_draws_its_plots_offline(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    plots = _plots_in_quickstart()
    assert plots >= 1
    refused: list[str] = []
    errors: list[str] = []

    def only_here(route):
        address = route.request.url
        if address.startswith((served + "/", "data:", "blob:", "about:")):
            route.continue_()
        else:
            refused.append(address)
            route.abort()

    with sync_api.sync_playwright() as p:
        browser = chromium.launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", only_here)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        try:
            page.goto(f"{served}/tutorials/quickstart.html")
            # BokehJS draws each plot on a canvas (inside the plots' shadow roots)
            deadline = time.monotonic() + 90
            while page.locator(".bk-Canvas").count() < plots:
                assert time.monotonic() < deadline, (
                    f"{page.locator('.bk-Canvas').count()} of {plots} plots drew; "
                    f"errors: {errors}; refused: {refused}"
                )
                time.sleep(0.5)
            # the live view, drawn from the widget state saved at the end of the run
            page.locator(".asynchpo-study .asynchpo-counts").first.wait_for(timeout=60_000)
            counts = page.locator(".asynchpo-counts").first.inner_text()
            time.sleep(1.0)  # time for a late error to be logged
        finally:
            page.screenshot(path=str(tmp_path / "quickstart-docs.png"), full_page=True)
            browser.close()
    shot = tmp_path / "quickstart-docs.png"
    assert shot.exists() and shot.stat().st_size > 50_000
    assert "done" in counts, counts
    assert not [e for e in errors if "Could not create a view" in e], errors
    assert not errors, errors
    assert not refused, f"the page asked the internet for {refused}"
