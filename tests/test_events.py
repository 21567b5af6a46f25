from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import asynchpo.events as ev
from asynchpo import Float, Space, TrialState
from asynchpo._limits import MAX_STRING, MAX_TEXT
from asynchpo.events import (
    RunFinished,
    RunStarted,
    StudyCreated,
    StudyState,
    TrialAsked,
    TrialCheckpointed,
    TrialCompleted,
    TrialFailed,
    TrialForked,
    TrialInterrupted,
    TrialPaused,
    TrialPruned,
    TrialReported,
    TrialRetried,
    TrialStarted,
    decode_record,
    event_from_dict,
    fold,
)
from asynchpo.storage import CorruptRecordWarning
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


# -- every field of every record is checked, on write and on read ---------------------------

ALL_KINDS = [
    created(),
    RunStarted(time=0.0, run=0, n_trials=5, max_concurrent=2, pid=7, host="h", holder="x"),
    RunFinished(time=1.0, run=0, reason="complete", error=None),
    asked(0, 0.5),
    TrialStarted(time=1.0, number=0, attempt=1, worker=None),
    TrialReported(time=1.5, number=0, step=-1, metrics={"loss": 0.4, "note": "ok"}, seq=0),
    TrialCompleted(time=2.0, number=0, values={"loss": 1, "ok": True, "x": None}),
    TrialFailed(time=2.0, number=1, reason="x", failure="worker_lost"),
    TrialPruned(time=2.0, number=2, step=None),
    TrialPaused(time=2.0, number=2, step=4),
    TrialForked(
        time=2.0, number=3, parent=2, name="trial-2/3-" + "0" * 32 + ".pkl", sha256="b" * 64
    ),
    TrialCheckpointed(
        time=2.0, number=2, seq=3, name="trial-2/3-" + "0" * 32 + ".pkl", sha256="a" * 64
    ),
    TrialRetried(time=2.0, number=2, attempt=3, reason="resumed", run=1, cause="resumed"),
    TrialInterrupted(time=2.0, number=3, reason="driver died"),
    TrialRetried(time=2.0, number=3, attempt=2, reason="again", run=None, cause="interrupted"),
]


def test_every_kind_of_event_round_trips_through_its_record():
    assert {type(e) for e in ALL_KINDS} == {type(e) for e in ALL_KINDS} | set(ev._KINDS.values()), (
        "a kind of event has no case here"
    )
    for e in ALL_KINDS:
        assert decode_record(e.to_json()) == e
        assert decode_record(e.to_json().encode()) == e


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (TrialStarted(time=math.inf, number=0), "time"),
        (TrialCheckpointed(time=1.0, number=0, name="x", sha256="not a digest"), "sha256"),
        (TrialRetried(time=1.0, number=0, cause="promoted"), "cause"),
        (TrialStarted(time="1", number=0), "time"),
        (TrialStarted(time=1.0, number=True), "number"),
        (TrialStarted(time=1.0, number=-1), "number"),
        (TrialStarted(time=1.0, number=2**63), "number"),
        (TrialStarted(time=1.0, number=np.int64(3)), "number"),
        (TrialStarted(time=1.0, number=0, attempt=0), "attempt"),
        (TrialStarted(time=1.0, number=0, worker=3), "worker"),
        (TrialStarted(time=1.0, number=0, worker="w" * (MAX_STRING + 1)), "worker"),
        (TrialStarted(time=1.0, number=0, worker="\ud800"), "worker"),
        (TrialAsked(time=1.0, number=0, params={"x": [1]}), "params"),
        (TrialAsked(time=1.0, number=0, params={1: 0.5}), "params"),
        (TrialAsked(time=1.0, number=0, params=[("x", 1)]), "params"),
        (TrialAsked(time=1.0, number=0, params={"x": 0.5}, run=-1), "run"),
        (TrialReported(time=1.0, number=0, step=1.5, metrics={}), "step"),
        (TrialReported(time=1.0, number=0, metrics={"a": math.nan}), "metrics"),
        (TrialReported(time=1.0, number=0, metrics={"a": {"b": 1}}), "metrics"),
        (TrialCompleted(time=1.0, number=0, values={"a": "v" * (MAX_STRING + 1)}), "values"),
        (TrialCompleted(time=1.0, number=0, values={str(i): 0 for i in range(1001)}), "values"),
        (TrialFailed(time=1.0, number=0, failure="meltdown"), "failure"),
        (TrialFailed(time=1.0, number=0, reason=None), "reason"),
        (TrialRetried(time=1.0, number=0, cause="gremlins"), "cause"),
        (RunStarted(time=1.0, clock="sundial"), "clock"),
        (RunStarted(time=1.0, max_concurrent=0), "max_concurrent"),
        (RunStarted(time=1.0, n_trials=-1), "n_trials"),
        (RunFinished(time=1.0, error=5), "error"),
        (StudyCreated(time=0.0, direction="<img src=x onerror=alert(1)>"), "direction"),
        (StudyCreated(time=0.0, objective=None), "objective"),
        (StudyCreated(time=0.0, space={"x": {"type": "float", "low": [[0]]}}), "space"),
        (StudyCreated(time=0.0, space={"x": "float"}), "space"),
    ],
)
def test_a_record_that_could_not_be_read_back_is_never_written(event, field):
    with pytest.raises(ValueError, match=rf"^{event.kind}: {field}\b"):
        event.to_json()
    # and the same record, written by other means, is refused on reading it
    data = event.to_dict()
    try:
        payload = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):  # JSON cannot hold it at all
        return
    if json.loads(payload) != data:  # JSON holds something else (an int key as a string)
        return
    with pytest.raises(ValueError, match=rf"{field}\b"):
        decode_record(payload)


def test_a_record_over_the_size_limit_is_refused_before_it_is_parsed(monkeypatch):
    big = TrialFailed(time=0.0, number=0, reason="x" * MAX_TEXT)
    monkeypatch.setattr(ev, "MAX_RECORD_BYTES", MAX_TEXT)
    with pytest.raises(ValueError, match="over the"):
        big.to_json()
    payload = '{"kind": "trial_failed", ' + " " * MAX_TEXT + "}"

    def never(*args):
        raise AssertionError("parsed")

    monkeypatch.setattr(ev, "_DECODER", never)
    for p in (payload, payload.encode(), "é" * (MAX_TEXT // 2 + 1)):
        with pytest.raises(ValueError, match="over the"):
            decode_record(p)


def test_free_text_is_cut_to_its_last_characters_not_refused():
    trace = "Traceback (most recent call last):\n" + "x" * (3 * MAX_TEXT) + "\nKeyError: 'lr'"
    for e in (
        TrialFailed(time=0.0, number=0, reason=trace),
        TrialInterrupted(time=0.0, number=0, reason=trace),
        TrialRetried(time=0.0, number=0, reason=trace),
        RunFinished(time=0.0, run=0, reason=trace, error=trace),
    ):
        for name in ("reason", "error"):
            text = getattr(e, name, None)
            if text is not None:
                assert len(text) == MAX_TEXT and text.endswith("\nKeyError: 'lr'")
        assert decode_record(e.to_json()) == e
    assert TrialFailed(time=0.0, number=0, reason="short").reason == "short"


def test_records_written_before_a_field_existed_still_read():
    # fields added over time default; what says what an event is about never does
    assert decode_record('{"kind":"trial_retried","time":1,"number":2,"attempt":3}') == (
        TrialRetried(time=1, number=2, attempt=3)
    )
    assert decode_record('{"kind":"run_started","time":1,"run":0,"pid":1,"host":"h"}').clock == (
        "wall"
    )
    for payload in (
        '{"kind":"trial_completed","time":1,"values":{"loss":1.0}}',
        '{"kind":"trial_started","number":1}',
        '{"kind":"run_finished","time":1,"reason":"complete"}',
        '{"kind":"study_created","time":0,"objective":"loss"}',
        '{"kind":"trial_asked","time":0,"number":0}',
    ):
        with pytest.raises(ValueError, match="has no"):
            decode_record(payload)


def test_every_field_of_every_kind_has_a_check():
    for cls in ev._KINDS.values():
        schema = ev._schema(cls)
        assert {name for name, *_ in schema.fields} == {f.name for f in ev._fields(cls)}


def test_decoding_anything_raises_only_value_error_and_folding_what_decodes_never_raises():
    rng = np.random.default_rng(0)
    good = [e.to_json().encode() for e in ALL_KINDS]
    alphabet = b'{}[]":,0123456789.-eE+ truefalsnNaInfity\\u\xff\x00'
    for _ in range(3000):
        raw = bytearray(good[rng.integers(len(good))])
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(len(raw)))
            action = rng.integers(3)
            if action == 0:
                raw[i] = alphabet[rng.integers(len(alphabet))]
            elif action == 1:
                del raw[i]
            else:
                raw.insert(i, alphabet[rng.integers(len(alphabet))])
        try:
            event = decode_record(bytes(raw))
        except ValueError:
            continue
        state = fold([created(), asked(0, 0.5), asked(1, 0.25)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptRecordWarning)
            state.apply(event)
        state.summary()
        state.observations()


# -- what does not fit the study is skipped, never raised ------------------------------------


def test_what_does_not_fit_the_study_is_skipped_with_the_reason():
    state = StudyState()
    with pytest.warns(CorruptRecordWarning, match="trial_asked before the study's study_created"):
        assert state.apply(asked(0, 0.5)) is not None
    assert state.apply(created()) is None
    for event, why in [
        (created("maximize"), "a second study_created"),
        (TrialAsked(time=1.0, number=0, params={}), r"missing parameter\(s\) \['x'\]"),
        (TrialAsked(time=1.0, number=1, params={"x": 0.5, "y": 1}), "unknown parameter"),
        (TrialAsked(time=1.0, number=2, params={"x": 1.5}), "outside"),
        (TrialAsked(time=1.0, number=3, params={"x": "a"}), "must be a finite number"),
        (TrialCompleted(time=1.0, number=2, values={"loss": 1.0}), "whose trial_asked was"),
        (TrialReported(time=1.0, number=9, metrics={"loss": 1.0}), "unknown trial 9"),
    ]:
        with pytest.warns(CorruptRecordWarning, match=why):
            assert state.apply(event) is not None
        assert state.apply(event, warn=False) is not None  # said only when asked to
    assert state.direction == "minimize" and state.n_skipped == 15
    assert state.trials() == [] and state.n_trials == 4  # the numbers stay taken
    assert not any(state.has_trial(n) for n in range(4))
    assert state.apply(TrialAsked(time=2.0, number=4, params={"x": 1})) is None
    assert state.has_trial(4) and state.trial(4).params == {"x": 1.0}  # as the space holds it
    with pytest.warns(CorruptRecordWarning, match="asked already"):
        state.apply(asked(4, 0.5))
    assert state.summary().n_trials == 1


def test_a_checkpoint_needs_a_name_and_a_digest_and_a_copy_may_have_neither():
    state = StudyState()
    state.apply(created())
    state.apply(asked(0, 0.5))
    state.apply(asked(1, 0.25))
    digest = "a" * 64
    with pytest.warns(CorruptRecordWarning, match="no name or digest"):
        assert state.apply(TrialCheckpointed(time=1.0, number=0, name="c", sha256="")) is not None
    assert state.checkpoint_of(0) is None
    assert state.apply(TrialCheckpointed(time=1.0, number=0, name="c", sha256=digest)) is None
    assert state.checkpoint_of(0) == {"name": "c", "sha256": digest}
    with pytest.warns(CorruptRecordWarning, match="a checkpoint name without digest"):
        assert state.apply(TrialForked(time=1.0, number=1, parent=0, name="c")) is not None
    # a copy imported from another study: its lineage, and nothing to restore from
    assert state.apply(TrialForked(time=1.0, number=1, parent=0)) is None
    assert state.trial(1).parent == 0 and state.checkpoint_of(1) is None


@pytest.mark.parametrize(
    "space",
    [
        {},
        {"x": {"type": "gaussian"}},
        {"x": {"type": "float", "low": 1.0, "high": 0.0}},
        {"x": {"type": "float", "low": 0.0, "high": 1.0, "evil": 1}},
        {"x": {"type": "categorical", "choices": []}},
        {"x": {"type": "int"}},
    ],
)
def test_a_study_whose_space_is_not_one_cannot_be_folded(space):
    event = decode_record(StudyCreated(time=0.0, space=space).to_json())
    with pytest.raises(ValueError, match=r"^study_created: its space is not a valid space \("):
        StudyState().apply(event)
