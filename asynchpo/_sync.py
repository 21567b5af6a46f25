"""The thin synchronous face of the asynchronous driver."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def block_on(
    make: Callable[[], Coroutine[Any, Any, T]],
    loop: asyncio.AbstractEventLoop | None,
    on_interrupt: Callable[[], None],
    grace: float = 60.0,
) -> T:
    """Run the coroutine ``make()`` to its end and return its result, blocking this thread.

    It runs on ``loop`` (a dask client's, running in its own thread) or, when ``loop`` is None,
    on a fresh loop in a new thread, so this works in a notebook, whose own loop is busy. On
    Ctrl-C, ``on_interrupt`` asks the coroutine to wind down, the call waits up to ``grace``
    seconds for it to leave a consistent record, and re-raises ``KeyboardInterrupt``.
    """
    future = launch(make, loop)
    try:
        return future.result()
    except KeyboardInterrupt:
        on_interrupt()
        with contextlib.suppress(BaseException):  # the interrupt is what the caller must see
            future.result(timeout=grace)
        raise


def launch(
    make: Callable[[], Coroutine[Any, Any, T]], loop: asyncio.AbstractEventLoop | None
) -> concurrent.futures.Future[T]:
    """Start the coroutine ``make()`` without waiting for it: on ``loop`` (running in another
    thread), or on a fresh loop in a new daemon thread when ``loop`` is None."""
    future: concurrent.futures.Future[T]
    if loop is None:
        future = concurrent.futures.Future()

        def target() -> None:
            try:
                future.set_result(asyncio.run(make()))
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(exc)

        threading.Thread(target=target, name="asynchpo-driver", daemon=True).start()
    else:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError(
                "the client is asynchronous and this is its loop: "
                "use `await study.optimize_async(...)` instead"
            )
        future = asyncio.run_coroutine_threadsafe(make(), loop)
    return future
