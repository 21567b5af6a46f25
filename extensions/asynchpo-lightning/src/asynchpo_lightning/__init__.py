"""PyTorch Lightning training inside asynchpo trials: reports, pruning, pause and resume."""

from asynchpo_lightning._callback import AsynchpoCallback, fit

__all__ = ["AsynchpoCallback", "fit"]
