from __future__ import annotations

import os
import signal
import time

import pytest

from asynchpo.surrogate._child import Child, ChildLostError

# jobs are pickled by reference: the child must import them, so they come from the stdlib


@pytest.fixture
def proc():
    c = Child()
    yield c
    c.close()


def test_jobs_run_in_another_process_in_order(proc):
    pids = [proc.submit(os.getpid) for _ in range(3)]
    got = {f.result(timeout=60) for f in pids}
    assert len(got) == 1 and got != {os.getpid()}


def test_errors_come_back_as_themselves(proc):
    with pytest.raises(ValueError, match="no good"):
        proc.submit(int, "no good").result(timeout=60)
    assert proc.submit(os.getpid).result(timeout=60) != os.getpid()  # and it goes on


def test_a_killed_child_fails_its_jobs_and_every_later_one(proc):
    pid = proc.submit(os.getpid).result(timeout=60)
    stuck = proc.submit(time.sleep, 30)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ChildLostError):
        stuck.result(timeout=30)
    later = proc.submit(os.getpid)
    with pytest.raises(ChildLostError):
        later.result(timeout=5)
