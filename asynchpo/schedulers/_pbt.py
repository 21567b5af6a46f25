"""Population based training (Jaderberg et al., 2017), asynchronous."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from asynchpo._checks import short
from asynchpo.schedulers._base import (
    BaseScheduler,
    Decision,
    Progress,
    Proposal,
    check_number,
    check_resource,
)
from asynchpo.space import Categorical, Float, Int, Space


class PBT(BaseScheduler):
    """Every ``perturbation_interval`` of resource, a trial in the worst ``quantile`` of the
    population is stopped and replaced by a copy of one of the best: a new trial that
    starts from the better trial's latest checkpoint (exploit) with its parameters
    perturbed or resampled (explore). The copy goes on counting resource where its parent
    was, so a population trains on while its hyperparameters adapt.

    The objective must save checkpoints (``asynchpo.checkpoint``) and start from
    ``asynchpo.restore()``; each copy is a new trial of the study, counted in ``n_trials``.

    Args:
        perturbation_interval: Resource between two looks at a trial.
        resource: ``"step"``, or the reported metric that measures progress.
        quantile: The share of the population (the trials running) copied from (the
            best) and replaced (the worst), in ``(0, 0.5]``: rounded up, at most half, so
            that two running trials are enough for one to be copied.
        resample_probability: Chance that a parameter is drawn anew rather than perturbed.
        perturb: The factors a number is multiplied by, one drawn at random (a categorical
            moves to a neighbouring choice; an integer too small to move by a factor, by
            one).
        seed: Seed of the draws.
        max_resource: The resource a trial reaches at its end, if known: a trial within
            one interval of it is not copied (the copy would have nothing to train).

    Example:
        >>> import asynchpo as ah
        >>> ah.PBT(perturbation_interval=4)
        PBT(perturbation_interval=4, resource='step', quantile=0.25, seed=0)
    """

    needs_checkpoints = True

    def __init__(
        self,
        perturbation_interval: float,
        *,
        resource: str = "step",
        quantile: float = 0.25,
        resample_probability: float = 0.25,
        perturb: tuple[float, ...] = (0.8, 1.2),
        seed: int = 0,
        max_resource: float | None = None,
    ):
        self.resource = check_resource(resource)
        self.max_resource = (
            None if max_resource is None else check_number("max_resource", max_resource, above=0)
        )
        self.interval = check_number("perturbation_interval", perturbation_interval, above=0)
        if self.max_resource is not None and self.max_resource < 2 * self.interval:
            raise ValueError(
                f"max_resource must be at least twice perturbation_interval (a trial is first "
                f"looked at after one interval, and a copy needs one more to train), got "
                f"max_resource={short(max_resource)}, "
                f"perturbation_interval={short(perturbation_interval)}"
            )
        self.quantile = check_number("quantile", quantile, above=0)
        if self.quantile > 0.5:
            raise ValueError(f"quantile must be in (0, 0.5], got {short(quantile)}")
        p = check_number("resample_probability", resample_probability)
        if p > 1:
            raise ValueError(f"resample_probability must be in [0, 1], got {short(p)}")
        self.resample_probability = p
        if (
            not isinstance(perturb, (tuple, list))
            or not perturb
            or not all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < math.inf
                for f in perturb
            )
        ):
            raise ValueError(f"perturb must be factors > 0, e.g. (0.8, 1.2), got {short(perturb)}")
        self.perturb = tuple(float(f) for f in perturb)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {short(seed)}")
        self.seed = seed
        self.space: Space | None = None
        self._params: dict[int, dict[str, Any]] = {}
        self._score: dict[int, float] = {}  # trial -> its loss at its latest look
        self._looked: dict[int, float] = {}  # trial -> resource of its latest look
        self._alive: set[int] = set()
        self._wanted: list[int] = []  # trials that made way for a copy not yet started
        self._at: dict[int, float] = {}  # trial -> the resource of its latest report

    def on_study(self, space: Space) -> None:
        self.space = space

    def on_start(self, number: int, params: Mapping[str, Any], parent: int | None = None) -> None:
        self._params[number] = dict(params)
        self._alive.add(number)
        if parent is not None and self._wanted:
            self._wanted.pop(0)  # the copy proposed first has started
            self._looked[number] = self._looked.get(parent, 0.0)
            self._at[number] = self._at.get(parent, 0.0)

    def on_finish(self, number: int, loss: float | None) -> None:
        self._alive.discard(number)

    def on_report(self, progress: Progress) -> Decision:
        n, loss = progress.number, progress.loss
        self._at[n] = progress.resource
        if loss is None or progress.resource < self._looked.get(n, 0.0) + self.interval:
            return Decision.CONTINUE
        self._looked[n] = progress.resource
        self._score[n] = loss
        ranked = self._ranked()
        k = self._share(len(ranked))
        if k < 1 or n not in ranked[-k:]:
            return Decision.CONTINUE
        self._wanted.append(n)  # makes way for a copy of one of the best
        self._alive.discard(n)
        return Decision.STOP

    def _share(self, n: int) -> int:
        """How many of ``n`` ranked trials are the best (and the worst) ``quantile``: rounded
        up, so that a population of two or three running trials has one of each, and never
        more than half (one running trial has neither)."""
        return min(math.ceil(n * self.quantile - 1e-9), n // 2)

    def _ranked(self) -> list[int]:
        """The trials running with a score, best first."""
        return sorted(
            (m for m in self._alive if m in self._score), key=lambda m: (self._score[m], m)
        )

    def _can_give(self, m: int) -> bool:
        """Whether trial ``m`` has training left for a copy to go on with."""
        top = self.max_resource
        return top is None or self._at.get(m, 0.0) + self.interval <= top

    def _explore(self, params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None, "the study's space comes with its first event"
        out = dict(params)
        for name, dist in self.space.items():
            # inactive in the parent: a fresh value, kept if it comes on
            if name not in out or rng.random() < self.resample_probability:
                out[name] = dist.decode(float(rng.random()))
            elif isinstance(dist, Categorical):
                i = dist.choices.index(out[name]) + int(rng.choice([-1, 1]))
                out[name] = dist.choices[min(max(i, 0), len(dist.choices) - 1)]
            elif isinstance(dist, (Float, Int)):
                factor = float(rng.choice(self.perturb))
                old = float(out[name])
                x = old * factor
                if isinstance(dist, Int):
                    x = round(x)
                    if x == old and factor != 1:  # too small to move by a factor: one step
                        x = old + (1 if factor > 1 else -1)
                elif x == old and factor != 1:  # at 0: a twentieth of the range
                    x = old + (dist.high - dist.low) / 20 * (1 if factor > 1 else -1)
                x = min(max(x, dist.low), dist.high)
                out[name] = dist.decode(dist.encode(x))
        return self.space.check(self.space.active(out))

    def propose(self) -> Proposal | None:
        """A copy of one of the best running trials (chosen now, from the scores as they
        are), for the first trial that made way for one."""
        if not self._wanted:
            return None
        ranked = self._ranked()
        k = self._share(len(ranked))
        best = [m for m in ranked[: max(k, 1)] if self._can_give(m)]
        if not best:
            return None  # none has training left to share: the sampler fills the slot
        rng = np.random.default_rng([self.seed, self._wanted[0], len(self._wanted)])
        parent = best[int(rng.integers(len(best)))]
        return Proposal(self._explore(self._params[parent], rng), parent)

    def __repr__(self) -> str:
        return (
            f"PBT(perturbation_interval={self.interval:g}, resource={self.resource!r}, "
            f"quantile={self.quantile:g}, seed={self.seed})"
        )
