"""hvplot drawings of the records in ``_records.py``: what ``study.plot`` gives."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo.plot import _records

if TYPE_CHECKING:
    from asynchpo.study import Study


#: The colour of a learning curve by how its trial ended.
_OUTCOMES = {
    "complete": "#2ca02c",
    "pruned": "#d62728",
    "paused": "#ff7f0e",
    "running": "#1f77b4",
    "failed": "#7f7f7f",
    "interrupted": "#9467bd",
}


def _hvplot() -> Any:
    """hvplot for pandas, with BokehJS inlined in notebooks (many clusters and login nodes
    cannot reach a CDN; the plot would stay blank)."""
    try:
        first = "hvplot" not in sys.modules
        import panel

        if first:
            panel.extension(inline=True)  # must come before hvplot's own import
        import hvplot.pandas
    except ImportError as error:
        raise ImportError("plots need hvplot: pip install 'asynchpo[plot]'") from error
    return hvplot


def _frame(**columns: Any) -> Any:
    import pandas

    return pandas.DataFrame(columns)


class StudyPlots:
    """The plots of a study, each a HoloViews object (displayed by a notebook, or saved
    with :meth:`save`). Each is computed first as a record (``asynchpo.plot._records``)
    from ``study.to_xarray()``, then drawn with hvplot.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
        >>> study.optimize(lambda p: p["x"], n_trials=5, progress=False)
        >>> plot = study.plot.history()  # doctest: +SKIP
    """

    def __init__(self, study: Study):
        self.study = study

    def _ds(self) -> Any:
        return self.study.to_xarray()

    def history(self, by: str = "trial") -> Any:
        """Each complete trial's objective and the best so far, against trial number
        (``by="trial"``) or seconds since the study began (``by="time"``)."""
        if by not in ("trial", "time"):
            raise ValueError(f"by must be 'trial' or 'time', got {by!r}")
        _hvplot()
        r = _records.history(self._ds())
        name = r.objective
        if by == "trial":
            df = _frame(trial=r.trial, value=r.value, best=r.best)
            x, xlabel = "trial", "trial"
        else:
            df = _frame(seconds=r.seconds[r.order], value=r.value[r.order], best=r.best_by_time)
            x, xlabel = "seconds", "seconds since the study began"
        dots = df.hvplot.scatter(x=x, y="value", label=name, alpha=0.6, size=12)
        line = df.hvplot.step(x=x, y="best", where="post", label=f"best {name}", color="black")
        return (dots * line).opts(
            title=f"{self.study.name}: {name} by {by}", xlabel=xlabel, ylabel=name
        )

    def slice(self, params: list[str] | None = None) -> Any:
        """The objective against each parameter (log axes for log parameters)."""
        _hvplot()
        r = _records.slices(self._ds())
        names = params or list(r.params)
        unknown = [p for p in names if p not in r.params]
        if unknown:
            raise ValueError(f"params: {unknown} are not parameters of the study")
        plots = []
        for p in names:
            values = r.params[p]
            df = _frame(**{p: values, r.objective: r.value, "trial": r.trial})
            plots.append(
                df.hvplot.scatter(
                    x=p, y=r.objective, hover_cols=["trial"], logx=r.log[p], width=300, height=250
                ).opts(title=p)
            )
        import holoviews

        return holoviews.Layout(plots).cols(3)

    def parallel_coordinates(self) -> Any:
        """Complete trials as lines across the parameters (each scaled as the sampler sees
        it), coloured by rank: best 10%, 10-50%, worst 50%."""
        _hvplot()
        import holoviews as hv

        r = _records.parallel(self._ds())
        x = np.arange(len(r.axes), dtype=float)
        layers = []
        groups = (("worst 50%", "#cccccc"), ("10-50%", "#1f77b4"), ("best 10%", "#2ca02c"))
        for group, color in groups:
            rows = r.scaled[r.group == group]
            paths = [np.column_stack([x, row]) for row in rows]
            layers.append(
                hv.Path(paths, kdims=["parameter", "scaled"], label=f"{group} ({len(rows)})").opts(
                    color=color, alpha=0.6
                )
            )
        return hv.Overlay(layers).opts(
            title=f"{self.study.name}: trials by {r.objective}",
            width=700,
            height=350,
            xticks=list(zip(x.tolist(), r.axes, strict=True)),
        )

    def learning_curves(self, metric: str | None = None) -> Any:
        """The metric each trial reported at each step (``asynchpo.report``), one line per
        trial, coloured by how the trial ended (complete, pruned, paused, ...); the
        objective's curves by default."""
        _hvplot()
        import holoviews as hv

        r = _records.curves(self._ds(), metric)
        layers = []
        for state in [s for s in _OUTCOMES if s in set(r.state)] or ["complete"]:
            keep = r.state == state
            trials, steps, values = r.trial[keep], r.step[keep], r.value[keep]
            # one line per trial in a single glyph: a gap (NaN) between trials
            cut = np.flatnonzero(np.diff(trials)) + 1
            x = np.insert(steps.astype(float), cut, np.nan)
            y = np.insert(values.astype(float), cut, np.nan)
            n = len(set(trials.tolist()))
            layers.append(
                hv.Curve((x, y), "step", r.metric, label=f"{state} ({n})").opts(
                    color=_OUTCOMES[state], alpha=0.6
                )
            )
        overlay = hv.Overlay(layers)
        return overlay.opts(title=f"{self.study.name}: {r.metric} per step", width=700, height=350)

    def importance(self, n: int = 2**11, seed: int = 0) -> Any:
        """Parameter importance: Sobol' indices (first order and total) of the mean of a GP
        fitted to the complete trials, computed with ``scipy.stats.sobol_indices``; the
        variance-based (functional ANOVA) decomposition of the fitted objective."""
        _hvplot()
        r = _records.importance(self._ds(), n=n, seed=seed)
        order = np.argsort(-np.nan_to_num(r.total))
        params = [r.params[i] for i in order]
        df = _frame(
            param=params * 2,
            index=np.concatenate([r.first[order], r.total[order]]),
            kind=["first order"] * len(params) + ["total"] * len(params),
        )
        return df.hvplot.bar(x="param", y="index", by="kind", ylim=(0, 1.05)).opts(
            title=f"{self.study.name}: importance for {r.objective} ({r.n_trials} trials)",
            ylabel="Sobol' index",
            xlabel="",
        )

    @staticmethod
    def save(plot: Any, path: str | os.PathLike[str]) -> None:
        """Write ``plot`` as a stand-alone HTML file with BokehJS inlined (opens offline)."""
        hvplot = _hvplot()
        from bokeh.resources import INLINE

        hvplot.save(plot, os.fspath(path), resources=INLINE)
