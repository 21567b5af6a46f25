"""The live view of a study: a pure fold of its events, and an ipywidgets view that draws it."""

from __future__ import annotations

from asynchpo.widgets._state import FinishedTrial, RunningTrial, ViewState, fold, reduce

__all__ = ["FinishedTrial", "RunningTrial", "ViewState", "fold", "reduce"]
