"""The Gaussian-process surrogate: gpytorch fits the hyperparameters, plain arrays predict."""

from __future__ import annotations

from asynchpo.surrogate._features import Features
from asynchpo.surrogate._fit import fit_hyper, lengthscale_prior_loc
from asynchpo.surrogate._posterior import DevicePosterior, Fantasy, Hyper, Posterior
from asynchpo.surrogate._warp import Warp

__all__ = [
    "DevicePosterior",
    "Fantasy",
    "Features",
    "Hyper",
    "Posterior",
    "Warp",
    "fit_hyper",
    "lengthscale_prior_loc",
]
