"""The live view of a study: ipywidgets that draw the summary its journal keeps."""

from __future__ import annotations

from asynchpo._summary import FinishedTrial, RunningTrial, Summary

__all__ = ["FinishedTrial", "RunningTrial", "Summary"]
