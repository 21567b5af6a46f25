"""Hyperparameter fits in a child Python process, so that they never hold the driver's GIL.

A fit is seconds of gpytorch work, much of it Python; in a thread it would slow every other
thread of the process (the driver handing out suggestions, a notebook's kernel). The child
is one long-lived Python process per interpreter, started on first
use; jobs are module-level functions and their arguments, pickled over its stdin and stdout
(a process we started, nothing else reads them). It needs no ``__main__`` guard in the
user's script, unlike ``multiprocessing``'s spawn. If the child cannot start or dies, jobs
fail with :class:`ChildLostError` and the caller runs them in a thread instead.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any


class ChildLostError(RuntimeError):
    """The fitting process could not start or died."""


class Child:
    """A child process that runs ``fn(*args)`` jobs one after another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._futures: dict[int, concurrent.futures.Future[Any]] = {}
        self._ids = itertools.count()
        self._dead = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        job = next(self._ids)
        with self._lock:
            try:
                proc = self._ensure()
                self._futures[job] = future
                assert proc.stdin is not None
                pickle.dump((job, fn, args), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
            except (OSError, ValueError, ChildLostError) as error:
                self._futures.pop(job, None)
                self._dead = True
                future.set_exception(ChildLostError(f"the fitting process is gone: {error}"))
        return future

    def start(self) -> None:
        """Start the process now, so that it is ready (torch imported) by the first fit."""
        with self._lock:
            try:
                self._ensure()
            except (OSError, ChildLostError):
                self._dead = True

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._dead:
            raise ChildLostError("it died earlier")
        if self._proc is None:
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from asynchpo.surrogate._child import main; main()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                start_new_session=True,  # a Ctrl-C or a kernel interrupt is the parent's
            )
            threading.Thread(
                target=self._read, args=(self._proc,), name="asynchpo-fit-reader", daemon=True
            ).start()
            atexit.register(self.close)
        return self._proc

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        while True:
            try:
                job, ok, payload = pickle.load(proc.stdout)
            except Exception:  # EOF or a torn message: the child is gone
                break
            with self._lock:
                future = self._futures.pop(job, None)
            if future is None:
                continue
            if ok:
                future.set_result(payload)
            else:
                future.set_exception(payload)
        with self._lock:
            self._dead = True
            lost, self._futures = self._futures, {}
        for future in lost.values():
            future.set_exception(ChildLostError(f"the fitting process exited ({proc.poll()})"))

    def close(self) -> None:
        """End the child (it also ends by itself when this process does)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()


_CHILD: Child | None = None
_CHILD_LOCK = threading.Lock()


def child() -> Child:
    """This interpreter's fitting process (started on first use)."""
    global _CHILD
    with _CHILD_LOCK:
        if _CHILD is None:
            _CHILD = Child()
        return _CHILD


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    while True:
        try:
            job, fn, args = pickle.load(inp)
        except EOFError:
            return
        try:
            reply = (job, True, fn(*args))
        except Exception as error:  # handed back to the parent
            reply = (job, False, error)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # an exception that cannot be pickled
            data = pickle.dumps((job, False, RuntimeError(repr(error))))
        out.write(data)
        out.flush()


def main() -> None:
    """The child's side: serve jobs until stdin closes."""
    # the protocol owns stdout: anything printed goes to stderr instead
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # it ends when the parent closes stdin
    import torch

    torch.set_num_threads(1)
    _serve(sys.stdin.buffer, protocol_out)
