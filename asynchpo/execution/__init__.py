"""Who runs trials (backends) and the one driver loop that joins them to a study.

Only this package imports ``distributed``, and only in the dask backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asynchpo.execution._backend import Backend, Finished, Job, Reported, Started
from asynchpo.execution._local import LocalBackend
from asynchpo.execution._loop import Driver, RunConfig
from asynchpo.execution._simulated import SimulatedBackend

if TYPE_CHECKING:
    from asynchpo.execution._dask import DaskBackend

__all__ = [
    "Backend",
    "DaskBackend",
    "Driver",
    "Finished",
    "Job",
    "LocalBackend",
    "Reported",
    "RunConfig",
    "SimulatedBackend",
    "Started",
]


def __getattr__(name: str) -> Any:
    if name == "DaskBackend":  # imports distributed: only when asked for
        from asynchpo.execution._dask import DaskBackend

        return DaskBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
