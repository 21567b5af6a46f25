"""An Optuna sampler as an asynchpo sampler: the history and the running trials are handed
to it as an Optuna study, and its asks are the suggestions."""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

import asynchpo as ah
from asynchpo.samplers import BaseSampler, History

_TOL = 1e-9  # two points are the same if they agree this closely once recorded


def distributions(space: ah.Space, *, by_index: bool = True) -> dict[str, BaseDistribution]:
    """Optuna's distribution for each parameter of ``space``: a categorical parameter as
    the index of its choice, so that any choice, of any type, passes through, or with
    ``by_index=False`` as its choices (those not of a type Optuna stores, as their text)."""
    out: dict[str, BaseDistribution] = {}
    for name in space:
        d = space[name]
        if isinstance(d, ah.Float):
            out[name] = FloatDistribution(d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, ah.Int):
            out[name] = IntDistribution(d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, ah.Categorical):
            out[name] = CategoricalDistribution(
                list(range(len(d.choices))) if by_index else [as_choice(d, c) for c in d.choices]
            )
        else:
            raise TypeError(f"parameter {name!r}: {type(d).__name__} has no Optuna equivalent")
    return out


#: Optuna's categorical choices are of these types only; others go as their text.
_PLAIN = (type(None), bool, int, float, str)


def as_choice(dist: Any, value: Any) -> Any:
    """``value`` as Optuna stores a choice of ``dist``: as it is, or as its text."""
    if isinstance(dist, ah.Categorical) and not isinstance(value, _PLAIN):
        return str(value)
    return value


_quiet = threading.local()


class _OwnStudies(logging.Filter):
    """Drops the line Optuna logs for each in-memory study a suggestion makes (one per
    suggestion: noise in the user's terminal), in the thread making it only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


logging.getLogger("optuna.storages._in_memory").addFilter(_OwnStudies())


class OptunaSampler(BaseSampler):
    """Any Optuna sampler (``TPESampler``, ``CmaEsSampler``, ``GPSampler``, ...) drives an
    asynchpo study.

    At each suggestion the study's complete, failed and running trials are given to the
    Optuna sampler as the trials of an in-memory Optuna study, in those states (a sampler
    that knows what to do with running trials, as ``TPESampler(constant_liar=True)`` does,
    sees them), and each suggestion is one ``ask``: the points of one call are running
    trials for the next ask of the same call. What the Optuna sampler writes on a trial it
    asks (its system attributes: ``CmaEsSampler`` keeps its optimizer there) goes back to
    it with that trial at every later suggestion, so a stateful sampler goes on learning.
    A point that repeats a taken one is drawn again at random, so no worker repeats
    another's work.

    Args:
        sampler: The Optuna sampler; its own seed makes the study reproducible.

    Example:
        >>> import optuna
        >>> import asynchpo as ah
        >>> from asynchpo_optuna import OptunaSampler
        >>> sampler = OptunaSampler(optuna.samplers.TPESampler(seed=0, constant_liar=True))
        >>> study = ah.Study(ah.Space(x=ah.Float(-3, 3)), sampler=sampler)
        >>> study.optimize(lambda p: (p["x"] - 1) ** 2, n_trials=30,
        ...                backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False)
        >>> study.best_value < 0.1
        True
    """

    def __init__(self, sampler: optuna.samplers.BaseSampler):
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            raise TypeError(f"sampler must be an optuna sampler, got {type(sampler).__name__}")
        self.sampler = sampler
        self._filler = ah.RandomSampler(seed=0)
        # what the Optuna sampler wrote on each trial it asked (CMA-ES keeps its optimizer
        # there), by the trial's point: given back with the trial at every later suggestion
        self._attrs: dict[bytes, dict[str, Any]] = {}

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        space, d = history.space, history.space.dim
        dists = distributions(space)
        running = np.reshape(np.asarray(pending, dtype=float), (-1, d))
        _quiet.on = True
        try:
            study = optuna.create_study(sampler=self.sampler, direction="minimize")
        finally:
            _quiet.on = False
        attrs = self._attrs
        trials = [
            *(
                _trial(space, dists, x, TrialState.COMPLETE, float(v), attrs.get(_key(x)))
                for x, v in zip(history.X, history.y, strict=True)
            ),
            *(
                _trial(space, dists, x, TrialState.FAIL, None, attrs.get(_key(x)))
                for x in history.X_failed
            ),
            *(
                _trial(space, dists, x, TrialState.RUNNING, None, attrs.get(_key(x)))
                for x in running
            ),
        ]
        with warnings.catch_warnings():  # experimental-feature notices are Optuna's own
            warnings.simplefilter("ignore")
            study.add_trials(trials)
            taken = _recorded(space, np.vstack([history.X, history.X_failed, running]))
            out: list[np.ndarray] = []
            for _ in range(n):
                trial = study.ask(dists)
                u = space.encode(_params(space, trial.params))
                if len(taken) and (np.abs(taken - u).max(axis=1) <= _TOL).any():
                    more = self._filler.suggest(history, np.vstack([taken, *out]), 1)
                    if len(more) == 0:  # the space is used up
                        break
                    u = np.asarray(more[0])
                else:
                    asked = study.get_trials(deepcopy=False)[trial.number]
                    attrs[_key(u)] = dict(asked.system_attrs)
                out.append(u)
                taken = np.vstack([taken, _recorded(space, u[None])])
        return np.array(out).reshape(len(out), d)


def _params(space: ah.Space, values: dict[str, Any]) -> dict[str, Any]:
    """Optuna's values as the space's parameters (the active ones)."""
    out = {}
    for name, v in values.items():
        dist = space[name]
        out[name] = dist.choices[int(v)] if isinstance(dist, ah.Categorical) else v
    return space.active(out)


def _key(u: np.ndarray) -> bytes:
    return np.round(np.asarray(u, dtype=float), 9).tobytes()


def _trial(
    space: ah.Space,
    dists: dict[str, BaseDistribution],
    x: np.ndarray,
    state: TrialState,
    value: float | None = None,
    system_attrs: dict[str, Any] | None = None,
) -> optuna.trial.FrozenTrial:
    params = space.decode(np.asarray(x))
    values = {}
    for name, v in params.items():
        dist = space[name]
        values[name] = dist.index(v) if isinstance(dist, ah.Categorical) else v
    return create_trial(
        params=values,
        distributions={name: dists[name] for name in values},
        value=value,
        state=state,
        system_attrs=system_attrs,
    )


def _recorded(space: ah.Space, U: np.ndarray) -> np.ndarray:
    rows = [space.encode(p) for p in space.decode_many(np.asarray(U))]
    return np.array(rows, dtype=float).reshape(len(rows), space.dim)


def tpe() -> OptunaSampler:
    """Optuna's TPE with the constant liar (running trials counted as bad): what
    ``Study(sampler="optuna-tpe")`` uses."""
    import optuna

    return OptunaSampler(optuna.samplers.TPESampler(constant_liar=True, multivariate=True))


def cmaes() -> OptunaSampler:
    """Optuna's CMA-ES: what ``Study(sampler="optuna-cmaes")`` uses."""
    import optuna

    return OptunaSampler(optuna.samplers.CmaEsSampler())
