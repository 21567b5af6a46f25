"""The study's live view in a notebook: ipywidgets that draw the journal's :class:`Summary`."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asynchpo._checks import positive_float
from asynchpo._summary import Summary

if TYPE_CHECKING:
    from asynchpo.study import Study

SHOWN = 10  # running trials listed


def _ipywidgets() -> Any:
    try:
        import ipywidgets
    except ImportError as error:
        raise ImportError(
            "the live study view needs ipywidgets: pip install 'asynchpo[jupyter]'"
        ) from error
    return ipywidgets


def clock(seconds: float | None) -> str:
    """``75.2`` -> ``"1:15"``; ``None`` -> ``"-"``."""
    if seconds is None:
        return "-"
    s = round(seconds)
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _took(seconds: float | None) -> str:
    """A trial's duration: ``0.25s`` under a minute, else ``1:15``."""
    if seconds is not None and seconds < 60:
        return f"{seconds:.3g}s"
    return clock(seconds)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def step_svg(points: Sequence[tuple[float, float]], x_end: float, xlabel: str, ylabel: str) -> str:
    """A best-so-far step line as a small inline SVG (no JavaScript, nothing to download)."""
    w, h, pad = 300, 150, 34
    if not points:
        return (
            f'<svg width="{w}" height="{h}"><text x="{w / 2}" y="{h / 2}" font-size="11" '
            f'text-anchor="middle" fill="#888">no complete trial yet</text></svg>'
        )
    xs = [p[0] for p in points] + [max(x_end, points[-1][0])]
    ys = [p[1] for p in points]
    x0, x1 = 0.0, max(xs[-1], 1e-9)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12 * max(1.0, abs(y0)):
        y0, y1 = y0 - 1.0, y1 + 1.0

    def X(x: float) -> float:
        return pad + (w - pad - 6) * (x - x0) / (x1 - x0)

    def Y(y: float) -> float:
        return h - pad + 10 - (h - pad - 4) * (y - y0) / (y1 - y0)

    path = [f"M{X(xs[0]):.1f},{Y(ys[0]):.1f}"]
    for i in range(1, len(xs)):
        path.append(f"H{X(xs[i]):.1f}")
        if i < len(ys):
            path.append(f"V{Y(ys[i]):.1f}")
    return (
        f'<svg width="{w}" height="{h}" font-size="10" font-family="sans-serif">'
        f'<line x1="{pad}" y1="{h - pad + 10}" x2="{w - 6}" y2="{h - pad + 10}" stroke="#999"/>'
        f'<line x1="{pad}" y1="6" x2="{pad}" y2="{h - pad + 10}" stroke="#999"/>'
        f'<path d="{"".join(path)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
        f'<text x="{pad - 3}" y="{Y(y1) + 4:.1f}" text-anchor="end">{y1:.3g}</text>'
        f'<text x="{pad - 3}" y="{Y(y0):.1f}" text-anchor="end">{y0:.3g}</text>'
        f'<text x="{w - 6}" y="{h - 8}" text-anchor="end">{xlabel} ({x1:.3g})</text>'
        f'<text x="{pad}" y="{h - 8}">{html.escape(ylabel)}</text></svg>'
    )


class StudyWidget:
    """A study's live view: progress, timing, the best trial, convergence, the running and
    the recently finished trials, and buttons to stop the run or one trial.

    It draws the summary the study's journal keeps (a listener of the journal only notes
    that something changed) from a thread of its own, at most ``max_rate`` times a second,
    plus once a second for the clock while a run goes on, so a fast study cannot flood the
    browser. Use ``study.widget()``, which returns the one view of a study.

    Args:
        study: The study to show.
        max_rate: Redraws per second at most.
    """

    def __init__(self, study: Study, max_rate: float = 4.0):
        W = _ipywidgets()
        self.study, self.interval = study, 1.0 / positive_float("max_rate", max_rate)
        self.draws = 0  # how many times it redrew (for tests and measurements)
        self.busy = 0.0  # seconds spent folding and drawing
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.state = Summary()

        def html_box(cls: str) -> Any:
            w = W.HTML()
            w.add_class(cls)
            return w

        self.title = html_box("asynchpo-title")
        self.progress = W.IntProgress(min=0, max=1, value=0, bar_style="info")
        self.progress.add_class("asynchpo-progress")
        self.counts = html_box("asynchpo-counts")
        self.best = html_box("asynchpo-best")
        self.plot = html_box("asynchpo-plot")
        self.running = html_box("asynchpo-running")
        self.recent = html_box("asynchpo-recent")
        self.message = html_box("asynchpo-message")
        self.stop_button = W.Button(description="Stop study", icon="stop", disabled=True)
        self.stop_button.add_class("asynchpo-stop")
        self.trial_choice = W.Dropdown(options=[], description="trial", layout={"width": "160px"})
        self.stop_trial_button = W.Button(description="Stop trial", disabled=True)
        self.stop_trial_button.add_class("asynchpo-stop-trial")
        self.stop_button.on_click(lambda _: self.study.stop())
        self.stop_trial_button.on_click(lambda _: self._stop_trial())
        self.running.layout.margin = "0 24px 0 0"
        tables = W.HBox([self.running, self.recent])
        controls = W.HBox([self.stop_button, self.trial_choice, self.stop_trial_button])
        self.box = W.VBox(
            [
                self.title,
                W.HBox([self.progress, self.counts], layout={"align_items": "center"}),
                self.best,
                self.plot,
                tables,
                controls,
                self.message,
            ]
        )
        self.box.add_class("asynchpo-study")
        self._parts = [
            self.title,
            self.progress,
            self.counts,
            self.best,
            self.plot,
            self.running,
            self.recent,
            self.message,
            self.stop_button,
            self.trial_choice,
            self.stop_trial_button,
        ]
        self.state = study.journal.subscribe(self._on_event)
        self.draw()
        threading.Thread(target=self._loop, name="asynchpo-widget", daemon=True).start()

    def __repr__(self) -> str:
        return f"<StudyWidget of {self.study.name!r}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    def _on_event(self, event: object) -> None:
        self._wake.set()  # all a listener does on the driver's path

    def _stop_trial(self) -> None:
        number = self.trial_choice.value
        if number is not None:
            self.study.stop_trial(int(number))

    def _loop(self) -> None:
        while True:
            self._wake.wait(timeout=1.0 if self.state.active else None)
            self._wake.clear()
            pause = self._last + self.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.draw()

    _last = 0.0

    def draw(self) -> None:
        """Draw the study as its journal summarizes it now."""
        t0 = time.perf_counter()
        with self._lock:
            self.state = self.study.journal.summary()
            self._render(self.state, time.time())
            self._last = time.monotonic()
            self.draws += 1
        self.busy += time.perf_counter() - t0

    def flush(self) -> None:
        """Draw now and send every part's whole state from this thread: the cell that calls
        it (``run.wait()``, a blocking ``optimize``) then carries the final view, which is
        what a notebook saved afterwards keeps."""
        self.draw()
        for part in self._parts:
            part.send_state()

    def _render(self, s: Summary, now: float) -> None:
        self.title.value = (
            f"<b>{html.escape(s.name)}</b>: {html.escape(s.direction)} "
            f"<code>{html.escape(s.objective)}</code>"
        )
        total = s.total if s.total is not None else max(s.done + len(s.running), 1)
        self.progress.max = max(total, 1)
        self.progress.value = min(s.done, self.progress.max)
        if s.error is not None and not s.active:
            self.progress.bar_style = "danger"
        elif not s.active and s.reason in ("complete", "exhausted"):
            self.progress.bar_style = "success"
        else:
            self.progress.bar_style = "info" if s.active else ""
        parts = [
            f"<b>{s.done}</b>{'' if s.total is None else f' / {s.total}'} done",
            f"{len(s.running)} running",
            f"{s.failed} failed",
            f"{s.pruned} pruned",
        ]
        if s.interrupted:
            parts.append(f"{s.interrupted} interrupted")
        parts.append(f"elapsed {clock(s.elapsed(now))}")
        eta = s.eta(now)
        if eta is not None:
            parts.append(f"ETA {clock(eta)}")
        if not s.active and s.reason:
            parts.append(f"run {html.escape(s.reason)}")
        self.counts.value = " &middot; ".join(parts)
        if s.best_value is None:
            self.best.value = "best: no complete trial yet"
        else:
            self.best.value = (
                f"best <code>{html.escape(s.objective)}</code> = <b>{s.best_value:.6g}</b> "
                f"(trial {s.best_number}): {html.escape(_params(s.best_params))}"
            )
        time_end = s.running_time(now)
        self.plot.value = (
            '<div style="display:flex;gap:12px">'
            + step_svg(s.best_by_trial, s.done, "trials", f"best {s.objective}")
            + step_svg(s.best_by_time, time_end, "seconds", f"best {s.objective}")
            + "</div>"
        )
        self.running.value = self._running_table(s, now)
        self.recent.value = self._recent_table(s)
        numbers = sorted(s.running)[:200]
        if list(self.trial_choice.options) != numbers:
            self.trial_choice.options = numbers
        self.stop_button.disabled = not s.active
        self.stop_trial_button.disabled = not (s.active and numbers)
        error = "" if s.error is None or s.active else html.escape("run stopped: " + s.error)
        self.message.value = f'<span style="color:#c00">{error}</span>' if error else ""

    @staticmethod
    def _running_table(s: Summary, now: float) -> str:
        rows = []
        end = now if s.clock == "wall" and s.active else s.last_time
        for t in sorted(s.running.values(), key=lambda r: r.number)[:SHOWN]:
            elapsed = None if t.started is None or end is None else max(0.0, end - t.started)
            rows.append(
                f"<tr><td>{t.number}</td><td>{html.escape(t.worker or '-')}</td>"
                f"<td>{clock(elapsed) if t.started is not None else 'queued'}</td>"
                f"<td>{html.escape(_params(t.params))}</td></tr>"
            )
        more = len(s.running) - SHOWN
        if more > 0:
            rows.append(f'<tr><td colspan="4">and {more} more</td></tr>')
        return (
            "<b>running</b><table><tr><th>trial</th><th>worker</th><th>for</th>"
            "<th>params</th></tr>" + "".join(rows) + "</table>"
        )

    @staticmethod
    def _recent_table(s: Summary) -> str:
        rows = []
        for t in s.recent:
            value = "" if t.value is None else f"{t.value:.6g}"
            rows.append(
                f"<tr><td>{t.number}</td><td>{html.escape(t.state)}</td><td>{value}</td>"
                f"<td>{_took(t.duration)}</td><td>{html.escape(t.detail[:80])}</td></tr>"
            )
        return (
            "<b>recently finished</b><table><tr><th>trial</th><th>state</th><th>value</th>"
            "<th>took</th><th></th></tr>" + "".join(rows) + "</table>"
        )
