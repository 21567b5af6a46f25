"""Asynchronous successive halving (ASHA) and asynchronous Hyperband."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from asynchpo._checks import short
from asynchpo.schedulers._base import (
    BaseScheduler,
    Decision,
    Forecast,
    Progress,
    check_number,
    check_resource,
)

_MODES = ("stop", "promotion")


#: The most rungs a scheduler may have (a reduction factor barely above 1 makes millions).
MAX_RUNGS = 100


def rung_levels(min_resource: float, max_resource: float, reduction_factor: float) -> list[float]:
    """The resource at each rung: ``min_resource * reduction_factor**k`` below
    ``max_resource``."""
    count = math.log(max_resource / min_resource) / math.log(reduction_factor)
    if count > MAX_RUNGS:
        raise ValueError(
            f"reduction_factor ({reduction_factor:g}) makes {math.ceil(count):,} rungs between "
            f"min_resource and max_resource, over {MAX_RUNGS}; use a larger one (2 to 4 is usual)"
        )
    levels, r = [], min_resource
    while r < max_resource * (1 - 1e-12):
        levels.append(r)
        r *= reduction_factor
    return levels


def _check_levels(
    max_resource: Any, min_resource: Any, reduction_factor: Any, mode: Any
) -> tuple[float, float, float, str]:
    top = check_number("max_resource", max_resource, above=0)
    low = check_number("min_resource", min_resource, above=0)
    if low >= top:
        raise ValueError(
            f"min_resource ({low:g}) must be below max_resource ({top:g}): no rung lies "
            "between them"
        )
    eta = check_number("reduction_factor", reduction_factor, above=1)
    if mode not in _MODES:
        raise ValueError(f"mode must be 'stop' or 'promotion', got {short(mode)}")
    return top, low, eta, str(mode)


class ASHA(BaseScheduler):
    """Asynchronous successive halving (Li et al., 2020).

    Rungs lie at ``min_resource * reduction_factor**k`` below ``max_resource``. When a trial
    reaches a rung, its result there is compared with every result recorded at that rung so
    far. With ``mode="stop"`` a trial outside the best ``1 / reduction_factor`` of them is
    stopped. With ``mode="promotion"`` (the paper's variant) a trial pauses at each rung
    unless it is among the best ``1 / reduction_factor`` not yet promoted; a paused trial is
    resumed later (from its checkpoint, see ``asynchpo.checkpoint``) when the rung has filled
    up enough for it to rank there, before any new trial is started (ranked by what the
    sampler's model expects at ``max_resource``, when it has one, e.g. ``GPSampler``);
    once no new trial will start (the study's budget is spent), the share is rounded up
    rather than down, so that the best trials run to ``max_resource``.

    Args:
        max_resource: The resource a trial reaches when it runs to the end (e.g. epochs).
        resource: ``"step"``, or the reported metric that measures progress.
        min_resource: The first rung.
        reduction_factor: ``eta``: one in ``eta`` trials goes on at each rung.
        mode: ``"stop"`` or ``"promotion"``.

    Example:
        >>> import asynchpo as ah
        >>> ah.ASHA(max_resource=27).rungs
        [1.0, 3.0, 9.0]
    """

    def __init__(
        self,
        max_resource: float,
        *,
        resource: str = "step",
        min_resource: float = 1,
        reduction_factor: float = 3,
        mode: str = "stop",
    ):
        self.resource = check_resource(resource)
        top, low, eta, self.mode = _check_levels(max_resource, min_resource, reduction_factor, mode)
        self.max_resource, self.min_resource, self.reduction_factor = top, low, eta
        self.pauses = self.mode == "promotion"
        self.rungs = rung_levels(low, top, eta)
        self._losses: list[dict[int, float]] = [{} for _ in self.rungs]  # rung -> trial -> loss
        self._promoted: list[set[int]] = [set() for _ in self.rungs]
        self._paused_at: dict[int, int] = {}  # trial -> rung it was paused at
        self._lost: set[int] = set()  # trials that ended for good without completing

    def rung_of(self, number: int) -> int | None:
        """The highest rung trial ``number`` reached, or None."""
        reached = [k for k, losses in enumerate(self._losses) if number in losses]
        return reached[-1] if reached else None

    def on_start(self, number: int, params: Mapping[str, Any], parent: int | None = None) -> None:
        k = self._paused_at.pop(number, None)
        if k is not None:  # resumed: promoted from the rung it paused at
            self._promoted[k].add(number)

    def on_finish(self, number: int, loss: float | None) -> None:
        if loss is None:  # failed, stopped by hand: its places go to the next best
            self._lost.add(number)

    def on_report(self, progress: Progress) -> Decision:
        if progress.loss is None:
            return Decision.CONTINUE
        n, loss = progress.number, progress.loss
        new = [
            k
            for k, level in enumerate(self.rungs)
            if progress.resource >= level * (1 - 1e-12) and n not in self._losses[k]
        ]
        if not new:
            return Decision.CONTINUE
        for k in new:
            self._losses[k][n] = loss
            for lower in range(k):  # it got past the lower rungs: promoted from there
                if n in self._losses[lower]:
                    self._promoted[lower].add(n)
        k = new[-1]
        if self.mode == "stop":
            # "lower": a value of the rung, never arithmetic on a diverged trial's inf
            values = list(self._losses[k].values())
            cutoff = float(np.quantile(values, 1 / self.reduction_factor, method="lower"))
            # a diverged trial stops, even where most of the rung diverged too (inf > inf
            # would be false, and a third of a rung of diverged trials would train on)
            diverged = loss == math.inf
            return Decision.STOP if loss > cutoff or diverged else Decision.CONTINUE
        if n in self._promotable(k):
            self._promoted[k].add(n)
            return Decision.CONTINUE
        self._paused_at[n] = k
        return Decision.PAUSE

    def levels(self) -> list[float]:
        return [*self.rungs, self.max_resource]

    def _promotable(
        self, k: int, idle: bool = False, forecast: Forecast | None = None
    ) -> list[int]:
        """The trials of rung ``k`` that may go on from it, best first: the best
        ``1 / reduction_factor`` of it, rounded down (up when a worker would idle), by
        their result at the rung, or by ``forecast`` (the model's view of their end)."""
        losses, promoted = self._losses[k], self._promoted[k]
        share = len(losses) / self.reduction_factor
        room = math.ceil(share) if idle else math.floor(share)
        # a trial that ended without completing (it failed, was stopped by hand) holds no
        # place: the next best paused one may have it
        ranked = [n for n in losses if n not in self._lost]
        if not room or not ranked:
            return []
        expected = None if forecast is None else forecast(ranked)
        if expected is not None and len(expected) == len(ranked):
            # the model's order changes as it learns: count the places already given
            score = dict(zip(ranked, map(float, expected), strict=True))
            left = room - len(promoted - self._lost)
            waiting = sorted((n for n in ranked if n not in promoted), key=lambda n: (score[n], n))
            return waiting[: max(0, left)]
        best = sorted(ranked, key=lambda n: (losses[n], n))[:room]
        return [n for n in best if n not in promoted]

    def resume(
        self, paused: Collection[int], *, idle: bool = False, forecast: Forecast | None = None
    ) -> int | None:
        for k in reversed(range(len(self.rungs))):
            if not any(self._paused_at.get(n) == k for n in paused):
                continue
            for n in self._promotable(k, idle, forecast):
                if n in paused and self._paused_at.get(n) == k:
                    return n
        return None

    def __repr__(self) -> str:
        return (
            f"ASHA(max_resource={self.max_resource:g}, resource={self.resource!r}, "
            f"min_resource={self.min_resource:g}, reduction_factor={self.reduction_factor:g}, "
            f"mode={self.mode!r})"
        )


class Hyperband(BaseScheduler):
    """Asynchronous Hyperband: several ASHA brackets, each starting at a later first rung.

    Bracket ``b`` has its first rung at ``min_resource * reduction_factor**b``; each new
    trial joins one bracket, drawn (from ``seed`` and its number) with the weights of
    Hyperband's brackets (Li et al., 2018), so that aggressive and cautious early stopping
    are hedged against each other.

    Args:
        max_resource, resource, min_resource, reduction_factor, mode: As for :class:`ASHA`.
        seed: Seed of the bracket draws.

    Example:
        >>> import asynchpo as ah
        >>> [b.rungs for b in ah.Hyperband(max_resource=9).brackets]
        [[1.0, 3.0], [3.0]]
    """

    def __init__(
        self,
        max_resource: float,
        *,
        resource: str = "step",
        min_resource: float = 1,
        reduction_factor: float = 3,
        mode: str = "stop",
        seed: int = 0,
    ):
        self.resource = check_resource(resource)
        top, low, eta, self.mode = _check_levels(max_resource, min_resource, reduction_factor, mode)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {short(seed)}")
        self.seed = seed
        self.pauses = self.mode == "promotion"
        self.brackets = [
            ASHA(top, resource=resource, min_resource=level, reduction_factor=eta, mode=mode)
            for level in rung_levels(low, top, eta)
        ]
        s = len(self.brackets) - 1
        n = np.array([math.ceil((s + 1) / (s - b + 1) * eta ** (s - b)) for b in range(s + 1)])
        self.weights = n / n.sum()
        self._bracket: dict[int, int] = {}

    def levels(self) -> list[float]:
        return sorted({level for b in self.brackets for level in b.levels()})

    def bracket_of(self, number: int) -> int:
        """The bracket trial ``number`` runs in."""
        b = self._bracket.get(number)
        if b is None:
            rng = np.random.default_rng([self.seed, number])
            b = self._bracket[number] = int(rng.choice(len(self.brackets), p=self.weights))
        return b

    def on_start(self, number: int, params: Mapping[str, Any], parent: int | None = None) -> None:
        self.brackets[self.bracket_of(number)].on_start(number, params, parent)

    def on_report(self, progress: Progress) -> Decision:
        return self.brackets[self.bracket_of(progress.number)].on_report(progress)

    def on_finish(self, number: int, loss: float | None) -> None:
        self.brackets[self.bracket_of(number)].on_finish(number, loss)

    def resume(
        self, paused: Collection[int], *, idle: bool = False, forecast: Forecast | None = None
    ) -> int | None:
        for b, bracket in enumerate(self.brackets):
            mine = [n for n in paused if self.bracket_of(n) == b]
            number = bracket.resume(mine, idle=idle, forecast=forecast) if mine else None
            if number is not None:
                return number
        return None

    def __repr__(self) -> str:
        first = self.brackets[0]
        return (
            f"Hyperband(max_resource={first.max_resource:g}, resource={self.resource!r}, "
            f"min_resource={first.min_resource:g}, reduction_factor={first.reduction_factor:g}, "
            f"mode={self.mode!r}, seed={self.seed}, brackets={len(self.brackets)})"
        )
