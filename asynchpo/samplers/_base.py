"""The sampler plug-in point: unit-cube arrays in, unit-cube arrays out, no I/O."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asynchpo.space import Space


@dataclass(frozen=True)
class Fidelity:
    """Results at several amounts of resource (epochs), for samplers that model them.

    Given when the study's scheduler compares trials at rungs (``ASHA``, ``Hyperband``):
    every result a trial had on reaching a rung, and each complete trial's at the end, in
    the order they came (later calls only append).

    Attributes:
        X: The trials' points, `m x d` (a trial once per rung it reached).
        z: The resource of each result on a log scale: 0 at the first rung, 1 at the
            scheduler's ``max_resource``, `m`.
        y: The objective there, oriented to be minimized, `m`.
        pending_z: For each running trial (the rows of ``pending``), the ``z`` of the rung
            it is heading for.
    """

    X: np.ndarray
    z: np.ndarray
    y: np.ndarray
    pending_z: np.ndarray


@dataclass(frozen=True)
class History:
    """What a sampler knows of the study, as unit-cube arrays.

    Attributes:
        space: The search space; coordinate ``j`` of every array is ``space.names[j]``.
        X: Complete trials' points, `n x d`.
        y: Their objective values oriented to be minimized (maximized objectives are
            negated), `n`.
        X_failed: Failed, pruned and paused trials' points, `f x d`: no value at the end,
            but not worth repeating.
        n_asked: How many trials the study has asked so far, from every source.
        fidelity: Intermediate results at the scheduler's rungs, for a sampler whose
            ``multi_fidelity`` is True; None otherwise.
    """

    space: Space
    X: np.ndarray
    y: np.ndarray
    X_failed: np.ndarray
    n_asked: int
    fidelity: Fidelity | None = None


class BaseSampler(ABC):
    """Decides where to evaluate next.

    ``suggest`` is given the history and the trials still running (``pending``); a sampler
    must take the pending points into account, or parallel workers will duplicate work: while
    the space has points left, no suggestion may repeat a complete, failed or running point,
    or another of the same call (equal within 1e-9 once decoded and encoded back).
    ``suggest`` gets a copy of the history taken under the journal's lock, so a sampler
    that updates a model incrementally compares it with what it saw last (as
    :class:`~asynchpo.GPSampler` does); there is no separate hook per finished trial.

    Example:
        >>> import numpy as np
        >>> from asynchpo import Float, Space
        >>> from asynchpo.samplers import RandomSampler
        >>> space = Space(x=Float(0, 1))
        >>> h = History(space, np.empty((0, 1)), np.empty(0), np.empty((0, 1)), 0)
        >>> RandomSampler(seed=0).suggest(h, np.empty((0, 1)), 2).shape
        (2, 1)
    """

    #: Whether ``suggest`` is always quick (well under a millisecond, as random or grid
    #: points are): the driver then calls it on its event loop instead of a thread of its own.
    cheap: ClassVar[bool] = False
    #: Whether it models results at several resources (``History.fidelity``): a study
    #: whose scheduler compares trials at rungs then gives it their results there.
    multi_fidelity: ClassVar[bool] = False

    def forecast(self, X: np.ndarray, fidelity: Fidelity | None = None) -> np.ndarray | None:
        """What the sampler's model expects of unit-cube points ``X`` (`m x d`) at the
        end of a trial (the full resource, for a multi-fidelity model), oriented to be
        minimized, in any monotone scale; None if it has no model. ``fidelity``: every
        result at the rungs so far (a multi-fidelity model counts in those it has not seen
        yet). A scheduler that resumes paused trials ranks them by it.
        Safe to call from any thread."""
        return None

    @abstractmethod
    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` new points of the unit cube, shape `m x d` with ``m <= n``.

        Args:
            history: What has finished so far.
            pending: Points of the trials still running, `p x d`.
            n: How many points the caller wants now (one per free worker).

        Returns:
            The points. Fewer than ``n`` rows (even none) means the sampler has no more
            points to give, as a grid does once it is exhausted.
        """
