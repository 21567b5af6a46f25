"""Asking a sampler for new trials: a snapshot of the journal in, numbered trials out."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from asynchpo.samplers import BaseSampler

if TYPE_CHECKING:
    from asynchpo.events import Event
    from asynchpo.journal import Journal
    from asynchpo.samplers import Fidelity


class Suggester:
    """Calls one sampler for one journal, one call at a time, from whichever thread asks
    (``Study.ask`` in the notebook, a run's driver); checks what it returns.

    A driver calls :meth:`suggest_async`, which computes in a thread of its own, so that a
    slow ``suggest`` (a model refit, a large history) never blocks the event loop that
    dask's messaging and the notebook run on.
    """

    def __init__(self, journal: Journal, sampler: BaseSampler):
        if not isinstance(sampler, BaseSampler):
            raise TypeError(f"sampler must be a BaseSampler, got {type(sampler).__name__}")
        self.journal, self.sampler = journal, sampler
        #: Results at several resources for a multi-fidelity sampler, while a run's
        #: scheduler keeps them (see ``Scheduling.fidelity``).
        self.fidelity: Callable[[list[int]], Fidelity] | None = None
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def suggest(self, n: int, run: int | None, before: Sequence[Event] = ()) -> list[int]:
        """Up to ``n`` new trials from the sampler, recorded; their numbers.

        ``before`` (events that ask no trial) is recorded in the same transaction, ahead of
        the new trials; the sampler does not see it. Only a sampler whose suggestions do not
        depend on what it would tell (a cheap one: results only move points from running to
        finished) should be asked this way.
        """
        space = self.journal.space
        with self._lock:
            history, pending = self.journal.snapshot(self.fidelity)
            U = np.asarray(self.sampler.suggest(history, pending, n), dtype=float)
            if U.ndim != 2 or U.shape[1] != space.dim or len(U) > n or not np.isfinite(U).all():
                raise RuntimeError(
                    f"{type(self.sampler).__name__}.suggest returned an array of "
                    f"shape {U.shape}; want at most {n} finite rows of {space.dim}"
                )
            if not len(U):
                if before:
                    self.journal.record(*before)
                return []
            return self.journal.ask(space.decode_many(U), run, before)

    async def suggest_async(self, n: int, run: int | None) -> list[int]:
        """:meth:`suggest`, computed off the running event loop."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "asynchpo-suggest")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.suggest, n, run)
