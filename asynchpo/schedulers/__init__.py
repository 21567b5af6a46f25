"""Schedulers: decisions on the reports of running trials (early stopping, pausing).

:class:`BaseScheduler` is the plug-in point; :class:`MedianStopping` is the reference
implementation to read first.
"""

from asynchpo.schedulers._asha import ASHA, Hyperband
from asynchpo.schedulers._base import BaseScheduler, Decision, Progress, Proposal
from asynchpo.schedulers._median import MedianStopping
from asynchpo.schedulers._pbt import PBT

__all__ = [
    "ASHA",
    "PBT",
    "BaseScheduler",
    "Decision",
    "Hyperband",
    "MedianStopping",
    "Progress",
    "Proposal",
]
