"""The median stopping rule: the scheduler to read first."""

from __future__ import annotations

import statistics
from collections import defaultdict

from asynchpo._checks import positive_int
from asynchpo.schedulers._base import (
    BaseScheduler,
    Decision,
    Progress,
    check_number,
    check_resource,
)


class MedianStopping(BaseScheduler):
    """Stops a trial whose best result so far is worse than the median of what the other
    trials had reached by the same point (the rule of Google Vizier and of Optuna's
    ``MedianPruner``).

    A trial is never stopped before ``grace`` (in units of ``resource``), nor while fewer
    than ``min_trials`` other trials have reported at that point.

    Args:
        resource: ``"step"``, or the reported metric that measures progress.
        grace: No decision before a trial reaches this much resource.
        min_trials: Other trials needed at a point before any trial is stopped there.

    Example:
        >>> import asynchpo as ah
        >>> s = ah.MedianStopping(min_trials=2)
        >>> p = lambda n, loss: ah.schedulers.Progress(n, {}, 1, 1.0, loss, {})
        >>> [s.on_report(p(0, 1.0)), s.on_report(p(1, 3.0)), s.on_report(p(2, 5.0))]
        [<Decision.CONTINUE: 'continue'>, <Decision.CONTINUE: 'continue'>, <Decision.STOP: 'stop'>]
    """

    def __init__(self, resource: str = "step", grace: float = 0, min_trials: int = 3):
        self.resource = check_resource(resource)
        self.grace = check_number("grace", grace)
        self.min_trials = positive_int("min_trials", min_trials)
        self._best: dict[int, float] = {}  # trial -> best loss so far
        self._at: defaultdict[float, dict[int, float]] = defaultdict(dict)  # point -> trial -> best

    def on_report(self, progress: Progress) -> Decision:
        if progress.loss is None:
            return Decision.CONTINUE
        n = progress.number
        best = min(progress.loss, self._best.get(n, progress.loss))
        self._best[n] = best
        at = self._at[progress.resource]
        at[n] = best
        if progress.resource < self.grace:
            return Decision.CONTINUE
        others = [v for k, v in at.items() if k != n]
        if len(others) < self.min_trials:
            return Decision.CONTINUE
        return Decision.STOP if best > statistics.median(others) else Decision.CONTINUE

    def __repr__(self) -> str:
        return (
            f"MedianStopping(resource={self.resource!r}, grace={self.grace:g}, "
            f"min_trials={self.min_trials})"
        )
