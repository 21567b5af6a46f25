"""A study's optimize call running in the background: what ``Study.start`` returns."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from asynchpo._checks import find_trial, trial_number
from asynchpo.trial import Trial

if TYPE_CHECKING:
    from asynchpo.events import StudyState
    from asynchpo.execution import Driver

logger = logging.getLogger("asynchpo")


class Run:
    """A handle on a run that goes on while the notebook does other things.

    ``wait()`` blocks until it ends and returns why it ended (``"complete"``, ``"timeout"``,
    ``"stopped"``, ``"exhausted"``), raising what the run raised; ``await run`` does the same
    without blocking an event loop. Displayed in a notebook, it shows the study's live view.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
        >>> run = study.start(lambda p: p["x"], n_trials=5, progress=False)
        >>> run.wait(timeout=30)
        'complete'
        >>> run.done, len(study.trials)
        (True, 5)
    """

    def __init__(
        self,
        name: str,
        driver: Driver,
        future: concurrent.futures.Future[str],
        *,
        on_end: Callable[[], None] | None = None,
        on_wait: Callable[[], None] | None = None,
        display: Callable[[], None] | None = None,
    ):
        self.name, self._driver, self._future = name, driver, future
        self._on_end, self._on_wait, self._display = on_end, on_wait, display
        self._reported = threading.Event()  # the end was logged and shown
        future.add_done_callback(self._report_end)

    def _report_end(self, future: concurrent.futures.Future[str]) -> None:
        try:
            if not future.cancelled() and future.exception() is not None:
                logger.error(
                    "study %r: the run stopped on an error: %r (run.wait() raises it)",
                    self.name,
                    future.exception(),
                )
            if self._on_end is not None:
                self._on_end()
        finally:
            self._reported.set()

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self._future.done()

    @property
    def reason(self) -> str | None:
        """Why the run ended (None while it runs or if it raised)."""
        if not self._future.done() or self._future.exception() is not None:
            return None
        return self._future.result()

    def exception(self) -> BaseException | None:
        """What the run raised, if it has ended on an error."""
        return self._future.exception() if self._future.done() else None

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends; return why, or raise what it raised.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds (it goes on).
        """
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"study {self.name!r} still runs after {timeout}s") from None
        finally:
            if self._future.done():
                # a future wakes its waiters before it runs its callbacks: let the end be
                # logged and drawn first
                self._reported.wait(10)
                if self._on_wait is not None:
                    self._on_wait()

    def __await__(self) -> Generator[Any, None, str]:
        return asyncio.wrap_future(self._future).__await__()

    def stop(self, cancel_running: bool = False, reason: str = "stopped") -> None:
        """Ask no new trials; running ones finish, or with ``cancel_running`` are
        interrupted (the next ``optimize`` runs them again). Returns at once."""
        self._driver.request_stop(cancel_running=cancel_running, reason=reason)

    def stop_trial(self, trial: Trial | int) -> None:
        """Stop one running trial; it is recorded as failed (``cancelled``). Returns at once.

        A number the study has not reached yet is taken while the run goes on: the trial is
        being suggested, and is stopped before it can start.

        Raises:
            ValueError: The study has no such trial (``trial`` is a negative number, a
                trial of another study, or a number the study never reached once the run
                is over).
        """

        def number_of(s: StudyState) -> int:
            number = trial_number("trial", trial)
            if not isinstance(trial, Trial) and number >= s.n_trials and not self.done:
                return number
            return find_trial(s, self.name, "trial", trial)

        self._driver.request_cancel(self._driver.journal.query(number_of))

    def __repr__(self) -> str:
        state = "running" if not self.done else (self.reason or "failed")
        return f"<Run of study {self.name!r}: {state}>"

    def _ipython_display_(self) -> None:
        if self._display is not None:
            self._display()
        else:
            print(repr(self))
