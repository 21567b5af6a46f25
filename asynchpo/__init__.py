"""asynchpo: asynchronous hyperparameter optimization on dask, from a notebook."""

from __future__ import annotations

from asynchpo._report import Pruned, report
from asynchpo._run import Run
from asynchpo.execution import Backend, LocalBackend, SimulatedBackend
from asynchpo.journal import Journal, StudyInUseError
from asynchpo.samplers import BaseSampler, GPSampler, GridSampler, RandomSampler, SobolSampler
from asynchpo.space import Categorical, Float, Int, Space
from asynchpo.storage import InMemoryStorage, SQLiteStorage
from asynchpo.study import Study
from asynchpo.trial import Failure, Report, Trial, TrialState

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BaseSampler",
    "Categorical",
    "Failure",
    "Float",
    "GPSampler",
    "GridSampler",
    "InMemoryStorage",
    "Int",
    "Journal",
    "LocalBackend",
    "Pruned",
    "RandomSampler",
    "Report",
    "Run",
    "SQLiteStorage",
    "SimulatedBackend",
    "SobolSampler",
    "Space",
    "Study",
    "StudyInUseError",
    "Trial",
    "TrialState",
    "__version__",
    "report",
]
