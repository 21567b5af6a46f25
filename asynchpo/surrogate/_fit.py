"""Fitting the GP's hyperparameters with gpytorch: marginal likelihood plus priors."""

from __future__ import annotations

import contextlib
import math
import sys
import warnings

import numpy as np

from asynchpo.surrogate._posterior import Hyper


def lengthscale_prior_loc(dim: int) -> float:
    """Location of the log-normal lengthscale prior: grows with the dimension.

    ``sqrt(2) + log(dim) / 2`` (with scale ``sqrt(3)``), after Hvarfner, Hellsten & Nardi
    (2024), "Vanilla Bayesian optimization performs great in high dimensions".
    """
    return math.sqrt(2.0) + math.log(max(dim, 1)) / 2.0


SHORT_LENGTHSCALE_PENALTY = 0.1


def _import_quietly() -> None:
    """Import gpytorch without the deprecation warning its dependencies raise at import
    (``torch.jit.script``, in linear_operator): ours to silence, not the user's to read.
    Once: the filters are global, and a later import is only a lookup."""
    if "gpytorch" in sys.modules:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning
        )
        import gpytorch  # noqa: F401


def fit_hyper(
    X: np.ndarray, y: np.ndarray, start: Hyper | None = None, max_iter: int = 100
) -> Hyper:
    """Maximum a posteriori hyperparameters of an exact GP on ``(X, y)``.

    A gpytorch ``ExactGP`` with ``ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=D))``, a
    log-normal lengthscale prior scaled with ``D``, a constant mean fixed at 0 (outputs are
    standardized) and a learned Gaussian noise, optimized by L-BFGS in float64 from
    ``start`` (the last fit: a warm start) or from the priors' modes.

    The log-normal prior alone hardly tells a lengthscale of 0.1 from one of 1 (half a nat
    apart). With a few hundred points in ten dimensions, the likelihood then often prefers
    a wiggly, noise-free reading of one or two inputs (Levy-10's ripples), and the search
    stays in the trough it is in along them. So each lengthscale ``l`` also pays
    ``SHORT_LENGTHSCALE_PENALTY / l**2`` (the short side of Optuna's GP prior): 10 nats at
    0.1, 0.4 at 0.5, nothing to speak of above; shorter ones need the data to insist.

    Args:
        X: Inputs, `n x D`.
        y: Standardized outputs, `n`.
        start: Where to start the optimization.
        max_iter: L-BFGS iterations.
    """
    _import_quietly()
    import gpytorch
    import torch
    from gpytorch.constraints import GreaterThan, Interval
    from gpytorch.kernels import MaternKernel, ScaleKernel
    from gpytorch.priors import GammaPrior, LogNormalPrior

    D = X.shape[1]
    start = start or Hyper.default(D)
    tX = torch.tensor(np.asarray(X, dtype=float), dtype=torch.float64)  # copies
    ty = torch.tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    likelihood = gpytorch.likelihoods.GaussianLikelihood(
        noise_prior=LogNormalPrior(-4.0, 1.0), noise_constraint=GreaterThan(1e-6)
    ).double()

    class Model(gpytorch.models.ExactGP):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(tX, ty, likelihood)
            self.mean = gpytorch.means.ZeroMean()
            self.covar = ScaleKernel(
                MaternKernel(
                    nu=2.5,
                    ard_num_dims=D,
                    lengthscale_prior=LogNormalPrior(lengthscale_prior_loc(D), math.sqrt(3.0)),
                    lengthscale_constraint=Interval(1e-3, 1e3),
                ),
                outputscale_prior=GammaPrior(2.0, 0.5),
                outputscale_constraint=Interval(1e-3, 1e2),
            )

        def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
            return gpytorch.distributions.MultivariateNormal(self.mean(x), self.covar(x))

    model = Model().double()
    model.covar.base_kernel.lengthscale = torch.as_tensor(
        np.clip(start.lengthscales, 2e-3, 5e2), dtype=torch.float64
    )
    model.covar.outputscale = float(np.clip(start.outputscale, 2e-3, 50.0))
    likelihood.noise = max(start.noise, 2e-6)
    model.train()
    likelihood.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        # the mll is per data point, priors included: so is the penalty
        short = (SHORT_LENGTHSCALE_PENALTY / model.covar.base_kernel.lengthscale**2).sum()
        loss: torch.Tensor = -mll(model(tX), ty) + short / len(ty)
        loss.backward()
        return loss

    with (
        gpytorch.settings.max_cholesky_size(10**6),
        gpytorch.settings.cholesky_jitter(1e-8),
        contextlib.suppress(RuntimeError, ValueError),  # a failed step: checked below
    ):
        opt.step(closure)
    with torch.no_grad():
        fitted = Hyper(
            model.covar.base_kernel.lengthscale.detach().numpy().reshape(-1).copy(),
            float(model.covar.outputscale),
            float(likelihood.noise),
        )
    values = [*fitted.lengthscales, fitted.outputscale, fitted.noise]
    return fitted if np.isfinite(values).all() else start
