"""A real browser: JupyterLab serves the quickstart, headless Chromium runs all its cells, and
the live view must reach the end and the plots must draw."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here (Debian: apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path):
    pytest.importorskip("jupyterlab")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    # every cell in the page (no virtual scrolling), and no settings from this machine
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = dict(
        os.environ,
        ASYNCHPO_SMALL="1",
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
    )
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--ServerApp.open_browser=False",
            "--allow-root",
            "--LabApp.expose_app_in_browser=True",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "lab.log").read_text()
            assert time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(0.5)
    yield url, token
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_quickstart_runs_in_jupyterlab_and_its_view_goes_live(lab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, token = lab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox",
                "--headless=new",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _run_quickstart(page, url, token)
        finally:
            page.screenshot(path=str(tmp_path / "quickstart.png"), full_page=True)
        browser.close()
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000


def _run_quickstart(page, url: str, token: str) -> None:
    page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}&reset")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status=idle]", timeout=180_000)
    page.wait_for_function(
        "() => window.jupyterapp && "
        "document.body.innerText.includes('Python 3 (ipykernel) | Idle')",
        timeout=180_000,
    )
    # every text the live view's counts show, as the browser draws it
    page.evaluate(
        """() => {
            window.__counts = [];
            new MutationObserver(() => {
                for (const e of document.querySelectorAll('.asynchpo-counts')) {
                    const text = e.innerText.split(' done')[0];
                    const last = window.__counts[window.__counts.length - 1];
                    if (!last || last[1] !== text) window.__counts.push([performance.now(), text]);
                }
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    # Run > Run All Cells: the menu's command, called directly (menu clicks can land before
    # the notebook panel has focus)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    counts = page.locator(".asynchpo-counts").first
    counts.wait_for(timeout=180_000)
    deadline = time.monotonic() + 240
    while "16</b> / 16 done" not in (html := counts.inner_html()):
        assert time.monotonic() < deadline, f"the view stopped at {html!r}"
        time.sleep(0.2)
    seen = page.evaluate("window.__counts")
    shown = [text for _, text in seen]
    assert len(shown) >= 3 and shown[-1] == "16 / 16", f"the view did not go live: {shown}"
    span = (seen[-1][0] - seen[0][0]) / 1000
    print(f"the view showed {len(shown)} counts in {span:.1f} s: {shown}")
    bar = page.locator(".asynchpo-progress .progress-bar").first
    assert bar.evaluate("e => e.style.width") == "100%"
    assert page.locator(".asynchpo-best").first.inner_text().startswith("best error =")
    assert page.locator(".asynchpo-plot svg path").count() >= 1
    # every code cell has run (numbered prompts) ...
    page.wait_for_function(
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];"
        " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
        timeout=240_000,
    )
    # ... and BokehJS (inlined, no CDN) drew the three hvplot figures on canvases
    deadline = time.monotonic() + 60
    while page.locator("canvas").count() < 3:
        assert time.monotonic() < deadline, "the plots did not draw"
        time.sleep(0.5)
    body = page.locator("body").inner_text()
    assert "Could not create a view" not in body and "Traceback" not in body


RUNNING = """\
import time
import asynchpo as ah

study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))

def slow(params):
    time.sleep(0.25)
    return params["x"]

run = study.start(slow, n_trials=60, max_concurrent=2)
run"""


def _done(page) -> int:
    text = page.locator(".asynchpo-counts").first.inner_text()
    return int(text.split("/")[0].strip())


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_view_reattaches_when_the_notebook_is_reopened(lab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(RUNNING)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "running.ipynb")
    url, token = lab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--headless=new"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{url}/lab/tree/running.ipynb?token={token}&reset")
            page.wait_for_function(
                "() => window.jupyterapp && "
                "document.body.innerText.includes('Python 3 (ipykernel) | Idle')",
                timeout=180_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.locator(".asynchpo-counts").first.wait_for(timeout=120_000)
            deadline = time.monotonic() + 60
            while _done(page) < 4:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
            time.sleep(1.0)
            page.reload()  # the notebook is opened again; the kernel and its study go on
            page.locator(".asynchpo-counts").first.wait_for(timeout=120_000)
            first = _done(page)
            deadline = time.monotonic() + 120
            while _done(page) < 60:
                assert time.monotonic() < deadline, f"stuck at {_done(page)} after reopening"
                time.sleep(0.2)
            assert first < 60, "the study ended before the page came back: nothing was tested"
        finally:
            page.screenshot(path=str(tmp_path / "reopened.png"), full_page=True)
            browser.close()
