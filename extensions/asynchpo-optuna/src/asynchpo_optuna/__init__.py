"""Optuna's samplers inside asynchpo studies, and studies converted both ways."""

from asynchpo_optuna._convert import from_optuna, to_optuna
from asynchpo_optuna._sampler import OptunaSampler, distributions

__all__ = ["OptunaSampler", "distributions", "from_optuna", "to_optuna"]
