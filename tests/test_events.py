from __future__ import annotations

import json
import math

import numpy as np
import pytest

from asynchpo import Float, Space, TrialState
from asynchpo.events import (
    StudyCreated,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialReported,
    TrialRetried,
    TrialStarted,
    event_from_dict,
    fold,
)
from asynchpo.trial import Failure

SPACE = Space(x=Float(0.0, 1.0))


def created(direction="minimize"):
    return StudyCreated(time=0.0, space=SPACE.to_spec(), objective="loss", direction=direction)


def asked(n, x):
    return TrialAsked(time=float(n), number=n, params={"x": x})


def test_events_round_trip_through_json():
    events = [
        created(),
        asked(0, 0.5),
        TrialStarted(time=1.0, number=0, worker="w"),
        TrialReported(time=1.5, number=0, step=3, metrics={"loss": 0.4}, seq=0),
        TrialCompleted(time=2.0, number=0, values={"loss": 0.3}),
        TrialFailed(time=2.0, number=1, reason="x", failure="timeout"),
    ]
    for e in events:
        assert event_from_dict(json.loads(e.to_json())) == e
    with pytest.raises(ValueError):
        TrialCompleted(time=0.0, number=0, values={"loss": math.nan}).to_json()
    with pytest.raises(ValueError, match="unknown event kind"):
        event_from_dict({"kind": "nope", "time": 0})


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_fold_counts_best_and_arrays(direction):
    events = [created(direction)] + [asked(i, i / 10) for i in range(5)]
    events += [
        TrialCompleted(time=9.0, number=i, values={"loss": v})
        for i, v in [(0, 3.0), (1, 1.0), (3, 2.0)]
    ]
    events += [TrialFailed(time=9.0, number=2, reason="boom", failure="error")]
    state = fold(events)
    assert state.counts[TrialState.COMPLETE] == 3 and state.counts[TrialState.FAILED] == 1
    assert state.counts[TrialState.RUNNING] == 1
    assert state.best_number == (1 if direction == "minimize" else 0)
    X, y, X_failed, pending = state.observations()
    sign = 1 if direction == "minimize" else -1
    np.testing.assert_allclose(X[:, 0], [0.0, 0.1, 0.3])
    np.testing.assert_allclose(y, [sign * 3.0, sign * 1.0, sign * 2.0])
    np.testing.assert_allclose(X_failed[:, 0], [0.2])
    np.testing.assert_allclose(pending[:, 0], [0.4])
    assert state.trial(2).failure is Failure.ERROR and state.trial(2).error == "boom"


def test_a_trial_ends_once_and_reports_are_deduplicated():
    state = fold(
        [
            created(),
            asked(0, 0.5),
            TrialReported(time=1.0, number=0, step=0, metrics={"loss": 2.0}, seq=0),
            TrialReported(time=1.1, number=0, step=0, metrics={"loss": 2.0}, seq=0),
            TrialCompleted(time=2.0, number=0, values={"loss": 1.0}),
            TrialFailed(time=3.0, number=0, reason="late", failure="error"),
        ]
    )
    t = state.trial(0)
    assert t.state is TrialState.COMPLETE and t.value == 1.0 and len(t.reports) == 1


def test_interrupted_trials_can_be_retried_and_pending_follows():
    state = fold(
        [
            created(),
            asked(0, 0.5),
            TrialStarted(time=1.0, number=0, worker="a"),
            TrialInterrupted(time=2.0, number=0, reason="driver died"),
        ]
    )
    assert state.trial(0).state is TrialState.INTERRUPTED
    assert len(state.observations()[3]) == 0
    state.apply(TrialRetried(time=3.0, number=0, attempt=2, reason="again"))
    state.apply(TrialStarted(time=3.5, number=0, worker="b"))
    t = state.trial(0)
    assert t.state is TrialState.RUNNING and t.attempts == 2 and t.worker == "b"
    assert len(state.observations()[3]) == 1


def test_events_about_unknown_trials_are_skipped_with_a_warning():
    state = fold([created(), asked(0, 0.5)])
    with pytest.warns(UserWarning, match="unknown trial 7"):
        state.apply(TrialCompleted(time=1.0, number=7, values={"loss": 1.0}))
    assert state.n_trials == 1


def test_pending_rows_survive_many_adds_and_removes():
    state = fold([created()] + [asked(i, (i % 10) / 10) for i in range(100)])
    for i in range(0, 100, 3):
        state.apply(TrialCompleted(time=5.0, number=i, values={"loss": float(i)}))
    pending = state.observations()[3]
    want = sorted((i % 10) / 10 for i in range(100) if i % 3)
    np.testing.assert_allclose(sorted(pending[:, 0]), want)
