"""A real browser: JupyterLab serves the quickstart, headless Chromium runs all its cells, and
the live view must reach the end and the plots must draw; a hostile study file opened there
must run no script and show its markup as text."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import chromium
import hostile_study
import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def lab(tmp_path):
    pytest.importorskip("jupyterlab")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    port, token = chromium.free_port(), secrets.token_hex(16)
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
    chromium.wait_for_server(
        server, f"{url}/api/status?token={token}", 120, (tmp_path / "lab.log").read_text
    )
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
        browser = chromium.launch(p)
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


KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

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
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, tmp_path / "running.ipynb")
    url, token = lab
    with sync_api.sync_playwright() as p:
        browser = chromium.launch(p)
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


def _hostile_notebook(tmp_path: Path, names: list[str]) -> None:
    nbformat = pytest.importorskip("nbformat")
    path = str(tmp_path / "hostile.db")
    cells = ["import asynchpo as ah"]
    for i, name in enumerate(names):
        cells.append(
            "try:\n"
            f"    study = ah.Study.load({name!r}, storage={path!r}, read_only=True)\n"
            f'    print("study %d: %s" % ({i}, "loaded"))\n'  # the text differs from the code
            "except ValueError as exc:  # a loader may refuse a forged study\n"
            "    study = None\n"
            f'    print("study %d: %s" % ({i}, "refused"), exc)\n'
            "study"
        )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, tmp_path / "hostile.ipynb")


# what, in the notebook's outputs, could run script or load something: an element of these
# kinds anywhere, a link in a view (JupyterLab links the paths in the warnings it shows), an
# event handler or a source on any element
DANGEROUS = """() => {
    const found = [];
    for (const e of document.querySelectorAll('.jp-OutputArea-output *')) {
        const tag = e.tagName.toLowerCase();
        const inView = e.closest('.asynchpo-study') !== null;
        if (['script', 'img', 'iframe', 'object', 'embed', 'style', 'foreignobject', 'image']
                .includes(tag) || (tag === 'a' && inView)) found.push(e.outerHTML);
        for (const a of e.getAttributeNames())
            if (a.startsWith('on') || a === 'src' || a === 'srcdoc' || (a.includes('href') &&
                    (inView || /^\\s*(javascript|data|vbscript):/i.test(e.getAttribute(a)))))
                found.push(e.outerHTML);
    }
    return found;
}"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_hostile_study_file_opened_in_jupyterlab_runs_no_script(lab, tmp_path):
    """Every text of the study file holds markup that calls alert() and loads /pwned/...
    when read as HTML; the live views must show it all as text, and nothing may fire."""
    sync_api = pytest.importorskip("playwright.sync_api")
    hostile_study.build(tmp_path / "hostile.db")
    names = list(hostile_study.SHOWN)
    _hostile_notebook(tmp_path, names)
    url, token = lab
    dialogs: list[str] = []
    loads: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = chromium.launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: loads.append(r.url) if "/pwned/" in r.url else None)
        try:
            page.goto(f"{url}/lab/tree/hostile.ipynb?token={token}&reset")
            page.wait_for_function(
                "() => window.jupyterapp && "
                "document.body.innerText.includes('Python 3 (ipykernel) | Idle')",
                timeout=180_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                "() => { const p = [...document.querySelectorAll("
                "'.jp-CodeCell .jp-InputArea-prompt')];"
                " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
                timeout=180_000,
            )
            page.locator(".asynchpo-study").first.wait_for(timeout=60_000)
            time.sleep(3.0)  # time for any image to fail and any handler to fire
            body = page.locator("body").inner_text()
            loaded = [n for i, n in enumerate(names) if f"study {i}: loaded" in body]
            views = page.locator(".asynchpo-study")
            texts = [views.nth(k).inner_text() for k in range(views.count())]
            tips = page.eval_on_selector_all(
                ".asynchpo-recent td[title]", "es => es.map(e => e.getAttribute('title'))"
            )
            dangerous = page.evaluate(DANGEROUS)
        finally:
            page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
            browser.close()
    print(f"studies loaded: {len(loaded)} of {len(names)}; views: {len(texts)}")
    assert not dialogs, f"script ran: alert({dialogs})"
    assert not loads, f"markup loaded {loads}"
    assert not dangerous, f"the outputs hold {dangerous}"
    assert hostile_study.LEGAL in loaded, body
    assert len(texts) == len(loaded), body
    for name in loaded:  # each view shows its study's hostile text, as text
        (view,) = [t for t in texts if t.startswith(name + ":")]
        for text in hostile_study.SHOWN[name]:
            assert text in view, (name, text, view)
    assert any(hostile_study.TRACEBACK in tip and "Traceback" in tip for tip in tips), tips
