"""One BLAS thread while a suggestion is computed.

A suggestion is a few milliseconds of BLAS calls, most of them small. With a thread per
core, OpenBLAS splits each call over every core and waits for all of them; when a core is
busy (the fitting process refitting the hyperparameters, the trials themselves, anything
else on the machine), each call waits for the scheduler to hand the busy core back: on two
cores with a fit running, a suggestion at n = 1000 took 160 ms on two threads and 37 ms on
one. On one thread a call never waits for another core, and the candidate budget
(``GPSampler._budget``) is modelled on one core anyway.

OpenBLAS has one setting for the whole process, so the limit holds while any suggestion is
being computed, counted across threads; when the last one ends, each library gets its
previous setting back, unless something else changed it meanwhile (then that change
stands). The libraries are found with ``threadpoolctl``; without it, nothing is limited.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()
_DEPTH = 0
_LIBS: list[Any] | None = None  # threadpoolctl's controllers of the BLAS libraries loaded
_SAVED: list[tuple[Any, int]] = []  # (library, its setting before the limit)


def _libraries() -> list[Any]:
    global _LIBS
    if _LIBS is None:
        try:
            from threadpoolctl import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
                ThreadpoolController,
            )

            found = ThreadpoolController().lib_controllers
            _LIBS = [lib for lib in found if lib.user_api == "blas"]
        except Exception:  # not installed, or it cannot inspect this process
            _LIBS = []
    return _LIBS


def _set(lib: Any, n: int) -> None:
    # threadpoolctl (>= 3.6) lets only one Python thread at a time set OpenBLAS's process-wide
    # limit, and ignores the others; the limit here is counted across threads instead, and
    # is set from whichever thread computes a suggestion
    setter = getattr(lib, "_real_set_num_threads", None) or lib.set_num_threads
    setter(n)


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with BLAS on one thread (nested and concurrent uses are counted)."""
    global _DEPTH
    with _LOCK:
        if _DEPTH == 0:
            _SAVED.clear()
            for lib in _libraries():
                try:
                    before = lib.get_num_threads()
                    if before is not None and before > 1:
                        _set(lib, 1)
                        _SAVED.append((lib, before))
                except Exception:  # a library that refuses: it computes as it is
                    continue
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0:
                for lib, before in _SAVED:
                    with contextlib.suppress(Exception):
                        if lib.get_num_threads() == 1:  # not changed by anyone else since
                            _set(lib, before)
                _SAVED.clear()
