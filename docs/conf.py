"""Sphinx configuration of the asynchpo documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``. The build needs no
internet access: the tutorials are executed here on a small budget, and every script the
pages load (BokehJS, Panel, the ipywidgets embedder) is served from ``_static``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
from sphinx.util import logging as sphinx_logging

import asynchpo

logger = sphinx_logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# The tutorials run on a small budget, as the test suite runs them. The kernels that
# myst-nb starts inherit this environment.
os.environ["ASYNCHPO_SMALL"] = "1"
# Plots carry BokehJS and Panel's JavaScript inline rather than from a CDN.
os.environ["BOKEH_RESOURCES"] = "inline"
os.environ["PANEL_INLINE"] = "1"

project = "asynchpo"
author = "The asynchpo developers"
copyright = "The asynchpo developers"
release = asynchpo.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

exclude_patterns = [
    "_build",
    "jupyter_execute",
    "**.ipynb_checkpoints",
    # toctrees that conf.py writes, included by the index pages
    "benchmarks/pages.md",
    "extensions/pages.md",
    "_generated",
]

# --- pages made from files outside docs/ ------------------------------------------------
# The notebooks, the benchmark tables and the extensions' READMEs live elsewhere in the
# repository; each build copies or includes them afresh (the generated files are ignored
# by git, see docs/.gitignore).

#: The tutorials' reading order (a notebook not named here comes after them).
NOTEBOOKS = ["quickstart", "early-stopping", "async-vs-sync", "resume-after-crash", "hpc-slurm"]
#: Notebooks that need what a documentation build does not have, and the note their page
#: shows under the title.
NOT_EXECUTED = {
    "hpc-slurm": (
        "```{note}\nThis notebook needs a running Slurm cluster, so it is not executed "
        "when this documentation is built: it is shown without its outputs. Run it where "
        "`squeue` answers.\n```"
    ),
}

BENCHMARK_TITLES = {
    "regret": "Regret against evaluations",
    "regret-30-seeds": "Regret: the closest cells over 30 seeds",
    "cmaes": "CMAESSampler against Optuna's CmaEsSampler",
    "latency": "Suggestion latency against history size",
    "scale": "A 2,000-trial study on 64 simulated workers",
    "ensemble-latency": "EnsembleSampler: suggestion latency",
    "ensemble-regret": "EnsembleSampler: regret against k",
    "ensemble-regret-10-seeds": "EnsembleSampler: 1 and 30 networks over 10 seeds",
    "portfolio-8": "PortfolioSampler, 8 workers",
    "portfolio-32": "PortfolioSampler, 32 workers",
    "idle": "Idle worker time",
    "driver_overhead": "Driver overhead next to raw dask",
    "pruning_latency": "Pruning latency",
    "mf_compare": "Multi-fidelity methods",
    "mf_compare_synthetic": "Multi-fidelity methods, each configuration run once",
    "notebook": "The live view's cost in a kernel",
    "slurm": "A study on Slurm",
    "verdicts": "Quality verdicts",
}


def _write(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (so Sphinx rebuilds only changes)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _clean(folder: Path, keep: set[str]) -> None:
    folder.mkdir(exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.name not in keep and path.name != "index.md":
            path.unlink()


def _generate() -> None:
    tutorials = DOCS / "tutorials"
    # the reading order first, then any notebook it does not name yet
    found = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    names = [n for n in NOTEBOOKS if n in found] + sorted(found - set(NOTEBOOKS))
    _clean(tutorials, {f"{n}.ipynb" for n in names})
    for name in names:
        source, target = ROOT / "notebooks" / f"{name}.ipynb", tutorials / f"{name}.ipynb"
        if name in NOT_EXECUTED:
            nb = nbformat.read(source, as_version=4)
            note = nbformat.v4.new_markdown_cell(NOT_EXECUTED[name])
            note["id"] = "not-executed"  # a fixed id: the same copy at each build
            nb.cells.insert(1, note)
            _write(target, nbformat.writes(nb))
        elif not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)

    benchmarks = DOCS / "benchmarks"
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    order = list(BENCHMARK_TITLES)
    results.sort(key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.stem))
    pages = []
    readme = ROOT / "benchmarks" / "README.md"
    if readme.exists():
        pages.append(("overview", "Benchmarks: how they are run", readme))
    for path in results:
        pages.append((path.stem, BENCHMARK_TITLES.get(path.stem, path.stem), path))
    _clean(benchmarks, {f"{stem}.md" for stem, _, _ in pages} | {"pages.md"})
    for stem, title, path in pages:
        first = path.read_text().lstrip().splitlines()[:1]
        heading = "" if first and first[0].startswith("# ") else f"# {title}\n\n"
        rel = os.path.relpath(path, benchmarks)
        _write(benchmarks / f"{stem}.md", f"{heading}```{{include}} {rel}\n```\n")
    toc = "\n".join(stem for stem, _, _ in pages)
    _write(benchmarks / "pages.md", f"```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n")

    extensions_dir = DOCS / "extensions"
    found = sorted(p.parent.name for p in (ROOT / "extensions").glob("*/README.md"))
    _clean(extensions_dir, {f"{n}.md" for n in found} | {"pages.md"})
    for name in found:
        rel = os.path.relpath(ROOT / "extensions" / name / "README.md", extensions_dir)
        _write(extensions_dir / f"{name}.md", f"```{{include}} {rel}\n```\n")
    toc = "\n".join(found)
    _write(extensions_dir / "pages.md", f"```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n")

    # the command line's own help, as `asynchpo <command> --help` prints it
    generated = DOCS / "_generated"
    generated.mkdir(exist_ok=True)
    from asynchpo import cli

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        for command in ("demo", "studies", "show", "extensions"):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                cli.parser().parse_args([command, "--help"])
            _write(generated / f"cli-{command}.txt", out.getvalue())
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


_generate()

# --- MyST and notebooks ------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

nb_execution_mode = "force"
nb_execution_timeout = 300  # seconds, per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True  # the notebooks' study files stay out of the source tree
nb_execution_excludepatterns = [f"tutorials/{name}.ipynb" for name in NOT_EXECUTED]
nb_merge_streams = True

# The live views are ipywidgets: their saved state is drawn by the ipywidgets HTML
# manager, served from _static (the default loads it and require.js from CDNs).
nb_ipywidgets_js = {"vendor/embed.js": {}}

# --- API reference -----------------------------------------------------------------------

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# --- HTML --------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"asynchpo {release}"
html_static_path = ["_static"]
html_show_sourcelink = False
html_copy_source = False

# --- plots without a CDN -----------------------------------------------------------------
# A notebook's bokeh/Panel output loads BokehJS and Panel's scripts and style sheets from
# cdn.bokeh.org and cdn.holoviz.org (even when it also carries them inline). Each page's
# links to those are rewritten to copies, in _static/cdn/, of the files the installed
# bokeh and panel ship: the same versions that drew the plots.

CDN = re.compile(
    r"https://cdn\.bokeh\.org/bokeh/release/(?P<bokeh>[a-z-]+?)-(?P<bokeh_version>\d[\w.+-]*?)"
    r"\.min\.js"
    r"|https://cdn\.holoviz\.org/panel/(?P<panel_version>[\w.+-]+)/dist/"
    r"(?P<panel>[\w./@^%+-]+?\.(?:js|css|json|svg|png|woff2?|ttf))"
)


def _local_file(match: re.Match[str]) -> tuple[Path, str] | str:
    """The installed file a CDN address stands for and its path under _static/cdn, or why
    there is none."""
    import bokeh
    import panel

    if match["bokeh"]:
        if match["bokeh_version"] != bokeh.__version__:
            return f"BokehJS {match['bokeh_version']} (bokeh {bokeh.__version__} is installed)"
        name = f"{match['bokeh']}.min.js"
        source = Path(bokeh.__file__).parent / "server" / "static" / "js" / name
        return source, f"bokeh/{name}"
    if match["panel_version"] != panel.__version__:
        return f"Panel {match['panel_version']} (panel {panel.__version__} is installed)"
    path = match["panel"].replace("%5E", "^")
    dist = Path(panel.__file__).parent / "dist"
    source = (dist / path).resolve()
    if not source.is_relative_to(dist.resolve()):
        return f"{path} (outside panel's dist)"
    return source, f"panel/{path}"


def _localize_cdn(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    body = context.get("body")
    if not body or "https://cdn." not in body:
        return
    static = Path(app.outdir) / "_static" / "cdn"
    page_dir = (Path(app.outdir) / app.builder.get_target_uri(pagename)).parent

    def local(match: re.Match[str]) -> str:
        found = _local_file(match)
        if isinstance(found, str) or not found[0].is_file():
            what = found if isinstance(found, str) else found[0]
            logger.warning(f"{match[0]}: no local copy of {what}", location=pagename)
            return match[0]
        source, rel = found
        target = static / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return Path(os.path.relpath(target, page_dir)).as_posix()

    context["body"] = CDN.sub(local, body)


# --- warnings ----------------------------------------------------------------------------
# HoloViews marks its outputs with two MIME types that only its JupyterLab extension
# reads; the same outputs carry the HTML and JavaScript the pages render.
HOLOVIEWS_ONLY = "skipping unknown output mime type: application/vnd.holoviews_"


class _HoloViewsMimeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(HOLOVIEWS_ONLY)


# --- one-line docstrings of properties and attributes -----------------------------------
# Google style reads ``type: description`` in the first line of a property's or an
# attribute's docstring; this project writes ``summary: detail`` there ("The study's
# journal: its events, ..."). Where napoleon took prose for a type, put the line back.
PROSE_TYPE = re.compile(r":type: (?P<prose>[^\[\]|`]*\s[^\[\]|`]*)$")


def _prose_not_type(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what not in ("attribute", "data", "property") or not lines:
        return
    found = PROSE_TYPE.match(lines[-1])
    if found and " or " not in found["prose"]:
        del lines[-1]
        while lines and not lines[-1].strip():
            del lines[-1]
        lines[0] = f"{found['prose']}: {lines[0]}"


def setup(app: Any) -> dict[str, Any]:
    for handler in logging.getLogger("sphinx").handlers:
        handler.filters.insert(0, _HoloViewsMimeFilter())
    app.connect("html-page-context", _localize_cdn)
    app.connect("autodoc-process-docstring", _prose_not_type, priority=600)  # after napoleon
    return {"parallel_read_safe": True}
