"""Optuna's samplers inside asynchpo studies."""

from asynchpo_optuna._sampler import OptunaSampler, distributions

__all__ = ["OptunaSampler", "distributions"]
