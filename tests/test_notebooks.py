"""The tutorials run top to bottom on a small budget, and their live views end finished."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def execute(name: str, workdir: Path) -> object:
    shutil.copy(NOTEBOOKS / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    os.environ["ASYNCHPO_SMALL"] = "1"
    try:
        nbclient.NotebookClient(
            nb,
            timeout=240,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(workdir)}},
        ).execute()
    finally:
        del os.environ["ASYNCHPO_SMALL"]
    nbformat.write(nb, workdir / name)
    return nb


def progress_bars(nb) -> list[dict]:
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [m["state"] for m in state.values() if m["model_name"] == "IntProgressModel"]


def html_widgets(nb) -> list[str]:
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]


@pytest.mark.slow
def test_quickstart(tmp_path):
    nb = execute("quickstart.ipynb", tmp_path)
    (bar,) = progress_bars(nb)
    assert bar["value"] == bar["max"] == 16 and bar["bar_style"] == "success"
    assert any("<b>16</b> / 16 done" in h for h in html_widgets(nb))
    assert (tmp_path / "quickstart.db").exists()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # the plots rendered (bokeh bundles in the outputs)
    assert (
        sum(
            "application/vnd.holoviews_load.v0+json" in o.get("data", {})
            or "application/vnd.bokehjs_exec.v0+json" in o.get("data", {})
            for o in outputs
        )
        >= 3
    )


@pytest.mark.slow
def test_async_vs_sync(tmp_path):
    nb = execute("async-vs-sync.ipynb", tmp_path)
    bars = progress_bars(nb)
    assert bars and all(b["value"] == b["max"] for b in bars)
    assert any(b["max"] == 48 for b in bars)


@pytest.mark.slow
def test_resume_after_crash(tmp_path):
    nb = execute("resume-after-crash.ipynb", tmp_path)
    bars = progress_bars(nb)
    assert bars and bars[-1]["value"] == bars[-1]["max"] == 24


@pytest.mark.slow
def test_early_stopping(tmp_path):
    nb = execute("early-stopping.ipynb", tmp_path)
    (bar,) = progress_bars(nb)
    assert bar["value"] == bar["max"] == 10 and bar["bar_style"] == "success"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    line = next(t for t in text.splitlines() if "epochs trained" in t)
    numbers = [int(n) for n in re.findall(r"\b\d+\b", line.split("best")[0])]
    trained, trials, pruned, full = numbers[0], numbers[1], numbers[2], numbers[3]
    assert trials == 10 and pruned >= 1 and trained < full
    assert any("pruned" in h for h in html_widgets(nb))
    assert (tmp_path / "early-stopping.db").exists()
