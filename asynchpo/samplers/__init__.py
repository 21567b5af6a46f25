"""Samplers decide where to evaluate next, from the finished and the running trials."""

from __future__ import annotations

from asynchpo.samplers._base import BaseSampler, Fidelity, History
from asynchpo.samplers._cmaes import CMAESSampler
from asynchpo.samplers._ensemble import EnsembleSampler
from asynchpo.samplers._gp import GPSampler
from asynchpo.samplers._grid import GridSampler
from asynchpo.samplers._portfolio import PortfolioSampler
from asynchpo.samplers._random import RandomSampler
from asynchpo.samplers._sobol import SobolSampler
from asynchpo.samplers._tpe import TPESampler

__all__ = [
    "BaseSampler",
    "CMAESSampler",
    "EnsembleSampler",
    "Fidelity",
    "GPSampler",
    "GridSampler",
    "History",
    "PortfolioSampler",
    "RandomSampler",
    "SobolSampler",
    "TPESampler",
]
