"""The study's live view in a notebook: ipywidgets that draw the journal's :class:`Summary`."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from asynchpo._checks import positive_float
from asynchpo._summary import Summary
from asynchpo.widgets._text import ELLIPSIS, LONG, clock, markup, number, params, plain, real

if TYPE_CHECKING:
    from asynchpo.study import Study

SHOWN = 10  # running trials listed
DIRECTIONS = ("minimize", "maximize")
COUNT_MAX = 2**53  # the progress bar's largest count (a JavaScript number stays exact)


def _ipywidgets() -> Any:
    try:
        import ipywidgets
    except ImportError as error:
        raise ImportError(
            "the live study view needs ipywidgets: pip install 'asynchpo[jupyter]'"
        ) from error
    return ipywidgets


def _took(seconds: Any) -> str:
    """A trial's duration: ``0.25s`` under a minute, else ``1:15``."""
    x = real(seconds)
    if x is not None and x < 60:
        return f"{x:.3g}s"
    return clock(seconds)


def _gist(detail: Any) -> Any:
    """A failure's detail in one line: ``error: ValueError: bad`` for a traceback."""
    if not isinstance(detail, str) or "\n" not in detail:
        return detail
    lines = [line for line in detail.splitlines() if line.strip()]
    if len(lines) < 2:
        return lines[0] if lines else ""
    head, traceback, _ = lines[0].partition("Traceback (most recent call last)")
    if traceback:
        return head + lines[-1].strip()
    return lines[0] + " " + ELLIPSIS


def _order(number: Any) -> tuple[int, float, str]:
    """A sort key for trial numbers of any type (numbers first, by value)."""
    x = real(number)
    return (0, x, "") if x is not None else (1, 0.0, plain(number))


def _points(points: Any) -> list[tuple[float, float]]:
    """The ``(x, y)`` pairs of ``points`` whose coordinates are both finite numbers."""
    kept = []
    for p in points if isinstance(points, Sequence) else ():
        xy = (real(p[0]), real(p[1])) if isinstance(p, Sequence) and len(p) == 2 else (None,)
        if None not in xy:
            kept.append(xy)
    return kept  # type: ignore[return-value]


def step_svg(points: Sequence[tuple[float, float]], x_end: float, xlabel: str, ylabel: str) -> str:
    """A best-so-far step line as a small inline SVG (no JavaScript, nothing to download).

    Points whose coordinates are not finite numbers are left out; the labels are text."""
    w, h, pad = 300, 150, 34
    pts = _points(points)
    if not pts:
        return (
            f'<svg width="{w}" height="{h}"><text x="{w / 2}" y="{h / 2}" font-size="11" '
            f'text-anchor="middle" fill="#888">no complete trial yet</text></svg>'
        )
    end = real(x_end)
    xs = [p[0] for p in pts] + [max(end if end is not None else pts[-1][0], pts[-1][0])]
    ys = [p[1] for p in pts]
    x0, x1 = min(0.0, min(xs)), max(xs[-1], 1e-9)
    y0, y1 = min(ys), max(ys)
    if not y1 - y0 > 1e-12 * max(1.0, abs(y0)):
        margin = max(1.0, abs(y0) / 100)  # a flat line, drawn mid-height at any scale
        y0, y1 = y0 - margin, y1 + margin

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
        f'<path d="{html.escape("".join(path))}" fill="none" stroke="#1f77b4" '
        'stroke-width="1.5"/>'
        f'<text x="{pad - 3}" y="{Y(y1) + 4:.1f}" text-anchor="end">{y1:.3g}</text>'
        f'<text x="{pad - 3}" y="{Y(y0):.1f}" text-anchor="end">{y0:.3g}</text>'
        f'<text x="{w - 6}" y="{h - 8}" text-anchor="end">{markup(xlabel, 60)} ({x1:.3g})'
        f'</text><text x="{pad}" y="{h - 8}">{markup(ylabel, 60)}</text></svg>'
    )


class StudyWidget:
    """A study's live view: progress, timing, the best trial, convergence, the running and
    the recently finished trials, and buttons to stop the run or one trial.

    It draws the summary the study's journal keeps (a listener of the journal only notes
    that something changed) from a thread of its own, at most ``max_rate`` times a second,
    plus once a second for the clock while a run goes on, so a fast study cannot flood the
    browser. Use ``study.widget()``, which returns the one view of a study.

    Whatever the study holds (a study file may come from anywhere), the view draws it as
    text: names, directions, parameters, workers and errors are escaped, long values are
    cut, and a value no part can show leaves that part saying so instead of failing.

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
        # every part is drawn on its own: a value no part can show spoils that part only
        active = s.active is True
        _draw(self.title, lambda: self._title(s))
        _draw(self.counts, lambda: self._counts(s, now, active))
        _draw(self.best, lambda: self._best(s))
        _draw(self.plot, lambda: self._plot(s, now))
        _draw(self.running, lambda: self._running_table(s, now, active))
        _draw(self.recent, lambda: self._recent_table(s))
        _draw(self.message, lambda: self._message(s, active))
        _safely(lambda: self._bar(s, active))
        if _safely(lambda: self._controls(s, active), False) is False:
            self.stop_trial_button.disabled = True

    def _bar(self, s: Summary, active: bool) -> None:
        done = _count(s.done)
        total = _count(s.total) if s.total is not None else done + _count(len(s.running))
        self.progress.max = max(total, 1)
        self.progress.value = min(done, self.progress.max)
        if s.error is not None and not active:
            self.progress.bar_style = "danger"
        elif not active and s.reason in ("complete", "exhausted"):
            self.progress.bar_style = "success"
        else:
            self.progress.bar_style = "info" if active else ""

    def _controls(self, s: Summary, active: bool) -> bool:
        numbers = sorted(n for n in s.running if isinstance(n, int) and not isinstance(n, bool))
        numbers = numbers[:200]
        if list(self.trial_choice.options) != numbers:
            self.trial_choice.options = numbers
        self.stop_button.disabled = not active
        self.stop_trial_button.disabled = not (active and numbers)
        return True

    @staticmethod
    def _title(s: Summary) -> str:
        d = s.direction
        if isinstance(d, str) and d in DIRECTIONS:
            direction = d
        else:
            direction = f'<span style="color:#c00">unknown direction {markup(d, 60)}</span>'
        return f"<b>{markup(s.name)}</b>: {direction} <code>{markup(s.objective)}</code>"

    @staticmethod
    def _counts(s: Summary, now: float, active: bool) -> str:
        total = "" if s.total is None else f" / {markup(s.total)}"
        parts = [
            f"<b>{markup(s.done)}</b>{total} done",
            f"{markup(len(s.running))} running",
            f"{markup(s.failed)} failed",
            f"{markup(s.pruned)} pruned",
        ]
        if real(s.paused):
            parts.append(f"{markup(s.paused)} paused")
        if real(s.interrupted):
            parts.append(f"{markup(s.interrupted)} interrupted")
        parts.append(f"elapsed {clock(_safely(lambda: s.elapsed(now)))}")
        if real(s.steps):
            parts.append(f"{markup(s.steps)} steps trained")
        eta = _safely(lambda: s.eta(now))
        if eta is not None:
            parts.append(f"ETA {clock(eta)}")
        if not active and s.reason:
            parts.append(f"run {markup(s.reason, 80)}")
        return " &middot; ".join(parts)

    @staticmethod
    def _best(s: Summary) -> str:
        if s.best_value is None:
            return "best: no complete trial yet"
        return (
            f"best <code>{markup(s.objective)}</code> = "
            f"<b>{markup(number(s.best_value, '.6g'))}</b> "
            f"(trial {markup(s.best_number)}): {markup(params(s.best_params), 3 * LONG)}"
        )

    @staticmethod
    def _plot(s: Summary, now: float) -> str:
        label = "best " + plain(s.objective, 50)
        time_end = _safely(lambda: s.running_time(now), 0.0)
        return (
            '<div style="display:flex;gap:12px">'
            + step_svg(s.best_by_trial, s.done, "trials", label)
            + step_svg(s.best_by_time, time_end, "seconds", label)
            + "</div>"
        )

    @staticmethod
    def _message(s: Summary, active: bool) -> str:
        if s.error is None or active:
            return ""
        text = markup(s.error, 10 * LONG)
        return f'<span style="color:#c00">run stopped: {text}</span>'

    @staticmethod
    def _running_table(s: Summary, now: float, active: bool) -> str:
        rows = []
        end = real(now if s.clock == "wall" and active else s.last_time)
        for t in sorted(s.running.values(), key=lambda r: _order(r.number))[:SHOWN]:
            started = real(t.started)
            elapsed = None if started is None or end is None else max(0.0, end - started)
            worker = "-" if t.worker is None or t.worker == "" else t.worker
            rows.append(
                f"<tr><td>{markup(t.number)}</td><td>{markup(worker, 60)}</td>"
                f"<td>{clock(elapsed) if t.started is not None else 'queued'}</td>"
                f"<td>{'' if t.step is None else markup(t.step)}</td>"
                f"<td>{markup(params(t.params), 3 * LONG)}</td></tr>"
            )
        more = len(s.running) - SHOWN
        if more > 0:
            rows.append(f'<tr><td colspan="5">and {more} more</td></tr>')
        return (
            "<b>running</b><table><tr><th>trial</th><th>worker</th><th>for</th><th>step</th>"
            "<th>params</th></tr>" + "".join(rows) + "</table>"
        )

    @staticmethod
    def _recent_table(s: Summary) -> str:
        rows = []
        for t in s.recent:
            value = "" if t.value is None else number(t.value, ".6g")
            full = plain(t.detail, 10 * LONG, lines=True)
            tip = f' title="{html.escape(full, quote=True)}"' if len(full) > 80 else ""
            rows.append(
                f"<tr><td>{markup(t.number)}</td><td>{markup(t.state, 40)}</td>"
                f"<td>{markup(value)}</td><td>{_took(t.duration)}</td>"
                f"<td{tip}>{markup(_gist(t.detail), 80)}</td></tr>"
            )
        return (
            "<b>recently finished</b><table><tr><th>trial</th><th>state</th><th>value</th>"
            "<th>took</th><th></th></tr>" + "".join(rows) + "</table>"
        )


def _draw(part: Any, make: Callable[[], str]) -> None:
    """Set ``part``'s HTML to what ``make`` draws, or to a note that it could not."""
    try:
        value = make()
    except Exception as exc:  # a hostile summary must not break the notebook
        value = f'<span style="color:#c00">cannot draw this: {markup(type(exc).__name__)}</span>'
    part.value = value


def _safely(compute: Callable[[], Any], default: Any = None) -> Any:
    try:
        return compute()
    except Exception:
        return default


def _count(value: Any) -> int:
    """A count for the progress bar: a number clamped to ``0..COUNT_MAX``, else 0."""
    x = real(value)
    return 0 if x is None else int(min(max(x, 0.0), COUNT_MAX))
