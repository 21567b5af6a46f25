"""Optuna's samplers inside asynchpo studies, and studies converted both ways."""

from asynchpo_optuna._convert import from_optuna, to_optuna
from asynchpo_optuna._sampler import OptunaSampler, cmaes, distributions, tpe

__all__ = ["OptunaSampler", "cmaes", "distributions", "from_optuna", "to_optuna", "tpe"]
