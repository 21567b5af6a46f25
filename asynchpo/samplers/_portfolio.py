"""An ensemble of methods sharing one history: a bandit gives each suggestion to one of them."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from asynchpo.acquisition._optimize import point_keys
from asynchpo.samplers._base import BaseSampler, Fidelity, History
from asynchpo.samplers._random import RandomSampler
from asynchpo.space import Space
from asynchpo.surrogate._features import Features

_RECENT = 50  # a result earns its member credit if it ranks in the best fifth of these
_TOP = 0.2
_LEAD = 0.5  # the share of the default portfolio's suggestions that go to its GP
_IN_FLIGHT = 0.5  # what a running trial counts, as misses of its member, until it is in
_EXPLORERS = 2  # the default portfolio's: at most this many trials of the others in flight


class PortfolioSampler(BaseSampler):
    """Several samplers on one history; each suggestion goes to one, chosen by a bandit.

    Every member sees every result and every running trial (the points its siblings chose
    in the same batch included), so each builds on the others' work. Which member makes the
    next suggestion is decided by discounted Thompson sampling over their recent success:
    when a member's trial completes, it earns credit if its value ranks in the best fifth
    of the latest 50 results (from any member); a failed trial earns none; a trial still
    running counts as half a miss (so that one member does not take every free worker
    before its results are in). Credit fades by ``discount`` with every result that comes
    in, so a member that stops helping (a local method once its basin is exhausted, a
    model that no longer fits) loses its share, and one that starts helping gains it.

    A share ``lead`` of the suggestions goes to the first member whatever the bandit says,
    the rest to the bandit's choice (the first member included), and once ``explorers``
    trials of the other members are in flight, the next suggestions go to the first member
    too. A model-based method needs a run of its own suggestions to converge, which a
    bandit over a few dozen results rarely grants it, least of all when many workers spend
    the budget in a few batches; the lead keeps that run going while a few workers bring in
    the points the model would not have tried.

    Given no members, it builds the default portfolio: :class:`~asynchpo.GPSampler` (the
    lead, with half the suggestions and all but two of the trials in flight, unless
    ``lead`` and ``explorers`` say otherwise),
    :class:`~asynchpo.EnsembleSampler`, :class:`~asynchpo.CMAESSampler`,
    :class:`~asynchpo.TPESampler` and :class:`~asynchpo.RandomSampler`. ``ah.Study(...,
    sampler="auto")`` uses it.

    Which member made a trial is known to this instance only: after ``Study.load`` the
    bandit starts again (the members' models rebuild from the history at once).

    Args:
        members: The samplers, at least one, each a separate instance.
        seed: Seed for the bandit's draws, and for the default members.
        discount: How much credit is kept per result that comes in, in ``(0, 1]``.
        lead: The share of suggestions that go to the first member, in ``[0, 1)``; by
            default 0.5 for the default portfolio and 0 for the members you give.
        explorers: At most this many trials of the members other than the first in flight
            at once (an int >= 1); by default 2 for the default portfolio and no limit
            (None) for the members you give.

    Example:
        >>> import asynchpo as ah
        >>> portfolio = ah.PortfolioSampler([ah.CMAESSampler(seed=0), ah.TPESampler(seed=0)],
        ...                                 seed=0)
        >>> study = ah.Study(ah.Space(x=ah.Float(-3, 3)), sampler=portfolio)
        >>> study.optimize(lambda p: (p["x"] - 1) ** 2, n_trials=40,
        ...                backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False)
        >>> study.best_value < 0.05
        True
        >>> sum(portfolio.counts.values())
        40
    """

    def __init__(
        self,
        members: Sequence[BaseSampler] | None = None,
        *,
        seed: int | None = None,
        discount: float = 0.95,
        lead: float | None = None,
        explorers: int | None = None,
    ):
        if lead is None:
            lead = _LEAD if members is None else 0.0
        if not (isinstance(lead, (int, float)) and 0 <= lead < 1):
            raise ValueError(f"lead must be in [0, 1), got {lead!r}")
        if explorers is None and members is None:
            explorers = _EXPLORERS
        if explorers is not None and (
            isinstance(explorers, bool) or not isinstance(explorers, int) or explorers < 1
        ):
            raise ValueError(f"explorers must be an int >= 1 or None, got {explorers!r}")
        if members is None:
            members = default_members(seed)
        members = list(members)
        if not members:
            raise ValueError("members must hold at least one sampler, got none")
        for i, m in enumerate(members):
            if not isinstance(m, BaseSampler):
                raise TypeError(f"members[{i}] must be a BaseSampler, got {type(m).__name__}")
            if any(m is other for other in members[:i]):
                raise ValueError(f"members[{i}] is members[{members.index(m)}] again")
        if not (isinstance(discount, (int, float)) and 0 < discount <= 1):
            raise ValueError(f"discount must be in (0, 1], got {discount!r}")
        self.members, self.seed, self.discount = members, seed, float(discount)
        self.lead, self.explorers = float(lead), explorers
        self._names = _names(members)
        self._entropy = (
            int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        )
        self._space: Space | None = None
        self._snap: Callable[[np.ndarray], np.ndarray] = lambda U: U
        self._reset()

    def _reset(self) -> None:
        k = len(self.members)
        self._alpha, self._beta = np.ones(k), np.ones(k)
        self._owner: dict[bytes, int] = {}  # a suggested point's key -> its member
        self._seen = self._seen_failed = 0
        self._values: deque[float] = deque(maxlen=_RECENT)  # the latest complete results
        self._counts = np.zeros(k, dtype=int)

    @property
    def counts(self) -> dict[str, int]:
        """How many suggestions each member made (this instance's)."""
        return dict(zip(self._names, self._counts.tolist(), strict=True))

    @property
    def shares(self) -> dict[str, float]:
        """The bandit's current expected success of each member."""
        p = self._alpha / (self._alpha + self._beta)
        return dict(zip(self._names, p.round(4).tolist(), strict=True))

    def forecast(self, X: np.ndarray, fidelity: Fidelity | None = None) -> np.ndarray | None:
        for m in self.members:
            out = m.forecast(X, fidelity)
            if out is not None:
                return out
        return None

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        d = history.space.dim
        if history.space is not self._space:
            self._space, self._snap = history.space, Features(history.space).snap
            self._reset()
        self._credit(history)
        rng = np.random.default_rng([self._entropy, history.n_asked, 5])
        running = np.reshape(np.asarray(pending, dtype=float), (-1, d))
        # a member's trials in flight count as half a miss each until they are in, so that
        # one member does not take every free worker on the strength of old results
        flying = np.zeros(len(self.members))
        others = 0
        for key in point_keys(self._snap(running)).tolist() if len(running) else []:
            if key in self._owner:
                flying[self._owner[key]] += _IN_FLIGHT
                others += self._owner[key] != 0
        picks = []
        for _ in range(n):
            full = self.explorers is not None and others >= self.explorers
            if full or rng.random() < self.lead:
                picks.append(0)
            else:
                picks.append(int(np.argmax(rng.beta(self._alpha, self._beta + flying))))
            others += picks[-1] != 0
            flying[picks[-1]] += _IN_FLIGHT
        chosen: list[np.ndarray] = []
        for j in dict.fromkeys(picks):  # members in the order first picked
            want = picks.count(j)
            batch = History(
                history.space,
                history.X,
                history.y,
                history.X_failed,
                history.n_asked + len(chosen),
                history.fidelity,
            )
            U = np.asarray(self.members[j].suggest(batch, np.vstack([running, *chosen]), want))
            U = np.reshape(U, (-1, d))[:want]
            if len(U) < want:  # a member out of points (a grid): random fills in
                more = RandomSampler(seed=int(rng.integers(2**31))).suggest(
                    batch, np.vstack([running, *chosen, U]), want - len(U)
                )
                U = np.vstack([U, more])
            self._own(U, j)
            chosen.extend(U)
        return np.array(chosen).reshape(len(chosen), d)

    def _own(self, U: np.ndarray, j: int) -> None:
        for key in point_keys(self._snap(U)).tolist():
            self._owner[key] = j
        self._counts[j] += len(U)

    def _credit(self, history: History) -> None:
        """Credit the members whose trials have come in since the last call."""
        X, y = np.asarray(history.X), np.asarray(history.y, dtype=float)
        F = np.asarray(history.X_failed)
        if len(X) < self._seen or len(F) < self._seen_failed:  # another history
            self._reset()
        if len(X) > self._seen:
            keys = point_keys(self._snap(X[self._seen :])).tolist()
            for key, v in zip(keys, y[self._seen :], strict=True):
                self._reward(self._owner.pop(key, None), self._success(float(v)))
                self._values.append(float(v))
            self._seen = len(X)
        if len(F) > self._seen_failed:
            for key in point_keys(self._snap(F[self._seen_failed :])).tolist():
                self._reward(self._owner.pop(key, None), 0.0)
            self._seen_failed = len(F)

    def _success(self, value: float) -> float:
        """1 if ``value`` ranks in the best fifth of the last ``_RECENT`` results, else 0."""
        if not self._values:
            return 1.0
        return 1.0 if value <= float(np.quantile(self._values, _TOP)) else 0.0

    def _reward(self, member: int | None, r: float) -> None:
        # every result fades the old credit (the bandit follows the recent past); a result
        # whose member is unknown (enqueued by hand, or from before a resume) credits none
        self._alpha = 1.0 + self.discount * (self._alpha - 1.0)
        self._beta = 1.0 + self.discount * (self._beta - 1.0)
        if member is not None:
            self._alpha[member] += r
            self._beta[member] += 1.0 - r


def default_members(seed: int | None) -> list[BaseSampler]:
    """The default portfolio: GP, neural ensemble, CMA-ES, TPE, random."""
    from asynchpo.samplers._cmaes import CMAESSampler
    from asynchpo.samplers._ensemble import EnsembleSampler
    from asynchpo.samplers._gp import GPSampler
    from asynchpo.samplers._tpe import TPESampler

    def s(k: int) -> int | None:
        return None if seed is None else seed + k

    return [
        GPSampler(seed=s(0), prefetch=False),
        EnsembleSampler(seed=s(1)),
        CMAESSampler(seed=s(2)),
        TPESampler(seed=s(3)),
        RandomSampler(seed=s(4)),
    ]


def _names(members: list[BaseSampler]) -> list[str]:
    kinds = [type(m).__name__ for m in members]
    return [
        k if kinds.count(k) == 1 else f"{k}-{kinds[:i].count(k) + 1}" for i, k in enumerate(kinds)
    ]
