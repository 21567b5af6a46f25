"""Schedulers: decisions on the reports of running trials (early stopping, pausing).

:class:`BaseScheduler` is the plug-in point; :class:`MedianStopping` is the reference
implementation to read first.
"""

from asynchpo.schedulers._asha import ASHA, Hyperband
from asynchpo.schedulers._base import BaseScheduler, Decision, Progress
from asynchpo.schedulers._median import MedianStopping

__all__ = ["ASHA", "BaseScheduler", "Decision", "Hyperband", "MedianStopping", "Progress"]
