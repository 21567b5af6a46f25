"""Where the study is shown: a notebook's kernel, or a terminal."""

from __future__ import annotations

import importlib.util
import sys


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel that can show widgets."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return (
        shell is not None
        and hasattr(shell, "kernel")
        and importlib.util.find_spec("ipywidgets") is not None
    )


def show(obj: object) -> None:
    """Display ``obj`` in the notebook."""
    from IPython.display import display

    display(obj)  # type: ignore[no-untyped-call]
