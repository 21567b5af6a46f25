"""Starting the asynchronous driver from synchronous code, or from its own loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def launch(
    make: Callable[[], Coroutine[Any, Any, T]],
    loop: asyncio.AbstractEventLoop | None,
    *,
    same_loop: bool = False,
) -> concurrent.futures.Future[T]:
    """Start the coroutine ``make()`` without waiting for it: on ``loop`` (running in another
    thread, or, with ``same_loop``, in this one, for a caller that awaits the result), or on
    a fresh loop in a new daemon thread when ``loop`` is None."""
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
        if running is loop and not same_loop:
            raise RuntimeError(
                "the client is asynchronous and this is its loop: "
                "use `await study.optimize_async(...)` instead"
            )
        future = asyncio.run_coroutine_threadsafe(make(), loop)
    return future
