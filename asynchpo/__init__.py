"""asynchpo: asynchronous hyperparameter optimization on dask, from a notebook."""

from __future__ import annotations

from asynchpo import schedulers
from asynchpo._checkpoint import CheckpointError
from asynchpo._report import Paused, Pruned, checkpoint, report, restore
from asynchpo._run import Run
from asynchpo.execution import Backend, LocalBackend, SimulatedBackend
from asynchpo.journal import Journal, StudyInUseError
from asynchpo.samplers import (
    BaseSampler,
    CMAESSampler,
    EnsembleSampler,
    GPSampler,
    GridSampler,
    PortfolioSampler,
    RandomSampler,
    SobolSampler,
    TPESampler,
)
from asynchpo.schedulers import ASHA, PBT, BaseScheduler, Hyperband, MedianStopping
from asynchpo.space import Categorical, Float, Int, Space
from asynchpo.storage import InMemoryStorage, SQLiteStorage
from asynchpo.study import Study
from asynchpo.trial import Failure, Report, Trial, TrialState

__version__ = "0.1.0"

__all__ = [
    "ASHA",
    "Backend",
    "BaseSampler",
    "CMAESSampler",
    "EnsembleSampler",
    "BaseScheduler",
    "Categorical",
    "CheckpointError",
    "Failure",
    "Float",
    "GPSampler",
    "GridSampler",
    "Hyperband",
    "InMemoryStorage",
    "Int",
    "Journal",
    "LocalBackend",
    "MedianStopping",
    "PBT",
    "PortfolioSampler",
    "Paused",
    "Pruned",
    "RandomSampler",
    "Report",
    "Run",
    "SQLiteStorage",
    "SimulatedBackend",
    "SobolSampler",
    "TPESampler",
    "Space",
    "Study",
    "StudyInUseError",
    "Trial",
    "TrialState",
    "__version__",
    "checkpoint",
    "report",
    "restore",
    "schedulers",
]
