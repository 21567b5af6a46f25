"""Plots of a study: pure records first (``asynchpo.plot.records``), then hvplot draws them."""

from __future__ import annotations

from asynchpo.plot._plots import StudyPlots

__all__ = ["StudyPlots"]
