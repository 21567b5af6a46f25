"""Nothing lost, nothing let in: every input is checked where it is given, before any trial
runs, with an error that names the parameter and what was wrong; what is accepted is stored
as it is, and read back."""

from __future__ import annotations

import enum
import json
import math
import threading
import time

import numpy as np
import pytest

import asynchpo as ah
from asynchpo._limits import MAX_CHOICES, MAX_PARAMS, MAX_STRING
from asynchpo._report import TrialContext, interpret_result, run_trial
from asynchpo.space import Distribution
from asynchpo.trial import Failure

BIG = 1.7976931348623157e308  # the largest float

# -- bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dist",
    [ah.Float(-1e308, 1e308), ah.Float(-BIG, BIG), ah.Float(-BIG, 0.0), ah.Float(-1.0, BIG)],
)
def test_wide_float_bounds_sample_across_the_range(dist):
    assert dist.decode(0.0) == dist.low and dist.decode(1.0) == dist.high
    us = np.linspace(0.0, 1.0, 101)
    xs = [dist.decode(u) for u in us]
    assert all(math.isfinite(x) and dist.low <= x <= dist.high for x in xs)
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # spread, not stuck at a bound
    for u, x in zip(us, xs, strict=True):
        assert math.isclose(dist.encode(x), u, abs_tol=1e-12)
    draws = ah.Space(x=dist).sample(np.random.default_rng(0), 200)
    middle = dist.decode(0.5)
    assert 60 < sum(d["x"] < middle for d in draws) < 140


def test_wide_float_grids_and_log_bounds_reach_both_ends():
    grid = ah.Float(-1e308, 1e308, step=1e307)
    values = grid.grid(1000)
    assert len(values) == 21 and values[0] == -1e308 and values[-1] == 1e308
    expected = [k * 1e307 for k in range(-10, 11)]
    assert all(math.isclose(v, e, abs_tol=1e293) for v, e in zip(values, expected, strict=True))
    assert grid.decode(grid.encode(5e307)) == 5e307 and grid.check("x", -1e308) == -1e308
    log = ah.Float(1e-300, BIG, log=True)
    assert log.decode(1.0) == BIG and log.decode(0.0) == 1e-300
    assert math.isclose(log.decode(0.5), math.sqrt(1e-300) * math.sqrt(BIG), rel_tol=1e-9)
    assert math.isclose(log.encode(log.decode(0.25)), 0.25, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ah.Float(0, 10**400), "Float: high must be a finite number"),
        (lambda: ah.Float(-(10**400), 0), "Float: low must be a finite number"),
        (lambda: ah.Float(0.0, math.nan), "Float: high must be a finite number"),
        (lambda: ah.Float(0, 1, step=10**400), "Float: step must be a finite number"),
        (lambda: ah.Float(0, 1, step=1e-300), "step 1e-300 makes more than 2\\*\\*53 values"),
        (lambda: ah.Int(0, 10**400), "Int: high must be an integer within"),
        (lambda: ah.Int(-(2**60), 0), "Int: low must be an integer within"),
    ],
)
def test_bounds_beyond_floats_are_refused_naming_the_bound(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- categorical choices ---------------------------------------------------------------------


class Name(str):
    pass


class Color(enum.IntEnum):
    RED = 3


def test_categorical_choices_are_plain_json_values(tmp_path):
    choices = [np.int64(1), np.float64(2.5), np.str_("relu"), np.bool_(True), Name("tanh")]
    cat = ah.Categorical([*choices, Color.RED, None])
    assert cat.choices == [1, 2.5, "relu", True, "tanh", 3, None]
    assert [type(c) for c in cat.choices] == [int, float, str, bool, str, int, type(None)]
    study = ah.Study(ah.Space(c=cat), storage=tmp_path / "s.db", name="s")
    for value in (1, np.int64(1), 2.5, np.float32(2.5), "relu", Name("relu"), True, 3, None):
        study.add_trial({"c": value}, 1.0)
    assert type(study.ask().params["c"]) in (int, float, str, bool, type(None))
    again = ah.Study.load("s", storage=tmp_path / "s.db")
    got = [t.params["c"] for t in again.trials[:9]]
    assert got == [1, 1, 2.5, 2.5, "relu", "relu", True, 3, None]
    assert [type(v) for v in got] == [int, int, float, float, str, str, bool, int, type(None)]
    assert again.space == study.space


@pytest.mark.parametrize(
    ("choices", "match"),
    [
        (["a", Name("a")], "choice 1 \\('a'\\) is choice 0 again"),
        ([np.int64(2), 2], "choice 1 \\(2\\) is choice 0 again"),
        ([np.float64(0.5), 0.5], "choice 1 \\(0.5\\) is choice 0 again"),
        ([0.0, -0.0], "choice 1 \\(-0.0\\) is choice 0 again"),
        ([np.bool_(False), False], "is choice 0 again"),
        (["x" * (MAX_STRING + 1)], f"a string of {MAX_STRING + 1} characters"),
        ([2**63], "an int beyond 64 bits"),
        ([np.datetime64("2020-01-01")], "choice 0 is np.datetime64"),
        ([b"a"], "choice 0 is b'a' \\(a bytes\\)"),
        ([{"a": 1}], "\\(a dict\\)"),
        ([1j], "\\(a complex\\)"),
        (range(MAX_CHOICES + 1), f"{MAX_CHOICES + 1} choices, over {MAX_CHOICES}"),
    ],
)
def test_bad_or_duplicate_choices_are_refused(choices, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ah.Categorical(choices)


def test_one_and_one_point_zero_stay_two_choices_through_json_and_storage(tmp_path):
    cat = ah.Categorical([1, 1.0, 2])
    assert cat.encode(1) != cat.encode(1.0) and cat.encode(np.int64(1)) == cat.encode(1)
    assert cat.encode(np.float64(1.0)) == cat.encode(1.0)
    space = ah.Space(c=cat)
    again = ah.Space.from_spec(json.loads(json.dumps(space.to_spec())))
    assert again == space
    assert [type(c) for c in again["c"].choices] == [int, float, int]
    assert again["c"].decode(again["c"].encode(1.0)) == 1.0
    assert type(again["c"].decode(again["c"].encode(1.0))) is float
    study = ah.Study(space, storage=tmp_path / "s.db", name="s")
    study.add_trial({"c": 1.0}, 0.5)
    study.add_trial({"c": 1}, 0.7)
    loaded = ah.Study.load("s", storage=tmp_path / "s.db")
    assert [type(t.params["c"]) for t in loaded.trials] == [float, int]
    assert loaded.best_params == {"c": 1.0} and type(loaded.best_params["c"]) is float


# -- a stored space is hostile input ---------------------------------------------------------

GOOD_FLOAT = {"type": "float", "low": 0.0, "high": 1.0, "log": False, "step": None}

HOSTILE_SPECS = {
    "not an object": ([1, 2], "space: a space is a JSON object"),
    "null": (None, "space: a space is a JSON object"),
    "empty": ({}, "space: Space: give at least one parameter"),
    "a distribution that is a list": ({"x": [0, 1]}, "parameter 'x': a distribution is"),
    "no type": ({"x": {"low": 0, "high": 1}}, "parameter 'x': unknown distribution type"),
    "an unhashable type": ({"x": {"type": []}}, "parameter 'x': unknown distribution type"),
    "an unknown kind": ({"x": {"type": "gauss"}}, "parameter 'x': unknown distribution type"),
    "a missing bound": ({"x": {"type": "float", "low": 0}}, "'x': float: missing field"),
    "an unknown field": ({"x": {**GOOD_FLOAT, "evil": 1}}, "'x': float: unknown field"),
    "a string bound": ({"x": {**GOOD_FLOAT, "low": "0"}}, "'x': Float: low must be"),
    "a bool bound": ({"x": {**GOOD_FLOAT, "high": True}}, "'x': Float: high must be"),
    "a huge bound": ({"x": {**GOOD_FLOAT, "high": 10**400}}, "'x': Float: high must be"),
    "low above high": ({"x": {**GOOD_FLOAT, "low": 2.0}}, "'x': Float: low must be < high"),
    "a log that is 1": ({"x": {**GOOD_FLOAT, "log": 1}}, "'x': Float: log must be True"),
    "a bad step": ({"x": {**GOOD_FLOAT, "step": "a"}}, "'x': Float: step must be"),
    "a float int bound": ({"n": {"type": "int", "low": 0.5, "high": 3}}, "'n': Int: low must"),
    "a huge int bound": ({"n": {"type": "int", "low": 0, "high": 2**64}}, "'n': Int: high"),
    "a step of zero": ({"n": {"type": "int", "low": 0, "high": 3, "step": 0}}, "'n': Int: step"),
    "choices a string": ({"c": {"type": "categorical", "choices": "ab"}}, "'c': Categorical"),
    "choices null": ({"c": {"type": "categorical", "choices": None}}, "'c': Categorical"),
    "no choices": ({"c": {"type": "categorical", "choices": []}}, "'c': Categorical: choices"),
    "a nested choice": ({"c": {"type": "categorical", "choices": [[1]]}}, "'c': Categorical"),
    "a dict choice": ({"c": {"type": "categorical", "choices": [{}]}}, "'c': Categorical"),
    "same choice twice": ({"c": {"type": "categorical", "choices": ["a", "a"]}}, "distinct"),
    "too many choices": (
        {"c": {"type": "categorical", "choices": list(range(MAX_CHOICES + 1))}},
        f"'c': categorical: {MAX_CHOICES + 1} choices, over {MAX_CHOICES}",
    ),
    "a long choice": (
        {"c": {"type": "categorical", "choices": ["x" * (MAX_STRING + 1)]}},
        f"'c': Categorical: .* a string of {MAX_STRING + 1} characters",
    ),
    "too many parameters": (
        {f"p{i}": GOOD_FLOAT for i in range(MAX_PARAMS + 1)},
        f"space: {MAX_PARAMS + 1} parameters, over {MAX_PARAMS}",
    ),
    "a long name": ({"x" * (MAX_STRING + 1): GOOD_FLOAT}, "space: parameter names are"),
    "an empty name": ({"": GOOD_FLOAT}, "space: parameter names are"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_SPECS))
def test_from_spec_refuses_hostile_specs_with_a_value_error_naming_the_parameter(kind):
    spec, match = HOSTILE_SPECS[kind]
    with pytest.raises(ValueError, match=match) as raised:
        ah.Space.from_spec(spec)
    assert type(raised.value) is ValueError and len(str(raised.value)) < 1000


def test_the_same_limits_hold_for_a_space_built_by_hand():
    with pytest.raises(ValueError, match=f"Space: {MAX_PARAMS + 1} parameters, over"):
        ah.Space({f"p{i}": ah.Float(0, 1) for i in range(MAX_PARAMS + 1)})
    with pytest.raises(ValueError, match="characters, over"):
        ah.Space({"x" * (MAX_STRING + 1): ah.Float(0, 1)})
    with pytest.raises(ValueError, match=f"{MAX_CHOICES + 1} choices, over"):
        ah.Categorical(list(range(MAX_CHOICES + 1)))
    long_choices = ah.Categorical([f"{i:05d}" + "x" * 9_000 for i in range(100)])
    with pytest.raises(ValueError, match="bytes of JSON, more than the"):
        ah.Space(c=long_choices, d=long_choices)
    with pytest.raises(ValueError, match="the choices take more than the"):
        ah.Categorical([f"{i:05d}" + "x" * 9_000 for i in range(MAX_CHOICES)])
    assert len(ah.Space({f"p{i}": ah.Float(0, 1) for i in range(MAX_PARAMS)})) == MAX_PARAMS
    with pytest.raises(ValueError, match="objective must be a metric name"):
        ah.Study(ah.Space(x=ah.Float(0, 1)), objective="m" * (MAX_STRING + 1))


SPACE = ah.Space(x=ah.Float(0.0, 1.0), n=ah.Int(1, 4), c=ah.Categorical(["a", "b"]))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, "missing parameter"),
        ([("x", 0.5)], "params must be a mapping"),
        ("x", "params must be a mapping"),
        (None, "params must be a mapping"),
        ({"x": 0.5, "n": 1, "c": "a", "zz": 1}, "unknown parameter\\(s\\) \\['zz'\\]"),
        ({"x": 0.5, "n": 1, "c": "a", 7: 1}, "unknown parameter\\(s\\) \\[7\\]"),
        ({"x": [0.5], "n": 1, "c": "a"}, "'x' must be a finite number"),
        ({"x": {}, "n": 1, "c": "a"}, "'x' must be a finite number"),
        ({"x": 10**400, "n": 1, "c": "a"}, "'x' must be a finite number"),
        ({"x": 10**5000, "n": 1, "c": "a"}, "'x' must be a finite number"),
        ({"x": "0.5", "n": 1, "c": "a"}, "'x' must be a finite number"),
        ({"x": True, "n": 1, "c": "a"}, "'x' must be a finite number"),
        ({"x": 0.5, "n": 1e400, "c": "a"}, "'n' must be an integer"),
        ({"x": 0.5, "n": [1], "c": "a"}, "'n' must be an integer"),
        ({"x": 0.5, "n": 10**400, "c": "a"}, "'n'=.* is outside"),
        ({"x": 0.5, "n": 1, "c": ["a"]}, "'c'=\\['a'\\] is not one of"),
        ({"x": 0.5, "n": 1, "c": {"a": 1}}, "'c'=.* is not one of"),
        ({"x": 0.5, "n": 1, "c": "a" * 20_000}, "'c'=.* is not one of"),
    ],
)
def test_space_check_raises_only_value_errors(params, match):
    with pytest.raises(ValueError, match=match) as raised:
        SPACE.check(params)
    assert type(raised.value) is ValueError and len(str(raised.value)) < 1000


# -- trials belong to their study ------------------------------------------------------------


def test_a_trial_of_another_study_is_refused():
    a = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    b = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=1))
    ta, tb = a.ask(), b.ask()
    assert ta.number == tb.number == 0
    with pytest.raises(ValueError, match="trial: the trial given is not trial 0 of study"):
        b.tell(ta, 1.0)
    with pytest.raises(ValueError, match="belongs to another study"):
        b.stop_trial(ta)
    assert b.trials[0].state is ah.TrialState.RUNNING  # untouched
    assert b.tell(tb, 1.0).state is ah.TrialState.COMPLETE
    assert a.tell(ta, 2.0).value == 2.0


def test_trial_numbers_are_any_integer_but_bool():
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    study.ask(), study.ask()
    assert study.tell(np.int64(0), 1.0).number == 0
    with pytest.raises(ValueError, match="trial must be a Trial or a trial number, got True"):
        study.tell(True, 1.0)
    with pytest.raises(ValueError, match=r"trial must be a Trial or a trial number, got 1\.0"):
        study.tell(1.0, 1.0)
    with pytest.raises(ValueError, match="trial must be a Trial or a trial number"):
        study.stop_trial("1")
    with pytest.raises(ValueError, match="no trial 5"):
        study.stop_trial(np.int32(5))
    study.stop_trial(np.int32(1))  # no run: nothing to stop, and no error


def test_run_stop_trial_takes_a_trial_and_refuses_another_studys():
    gate = threading.Event()
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    other = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    stranger = other.ask()
    run = study.start(lambda p: gate.wait(30) and 0.0, n_trials=1, progress=False)
    try:
        for _ in range(3000):  # until the run has asked its trial
            if study.trials:
                break
            time.sleep(0.01)
        with pytest.raises(ValueError, match="belongs to another study"):
            run.stop_trial(stranger)
        with pytest.raises(ValueError, match="trial must be a Trial or a trial number"):
            run.stop_trial(False)
        run.stop_trial(np.int64(0))
        assert run.wait(timeout=30) == "complete"
        assert study.trials[0].failure is Failure.CANCELLED
    finally:
        gate.set()


# -- results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [True, np.bool_(True), np.array(False)])
def test_bools_of_any_kind_are_not_objective_values(flag):
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    told = study.tell(study.ask(), flag)
    assert told.state is ah.TrialState.FAILED and told.failure is Failure.INVALID
    assert "returned bool" in told.error
    with pytest.raises(ValueError, match="value: the objective returned bool"):
        study.add_trial({"x": 0.5}, flag)
    values, _ = interpret_result({"value": 1.0, "ok": flag}, "value")
    assert values == {"value": 1.0, "ok": bool(flag)} and type(values["ok"]) is bool


LONG = "x" * (MAX_STRING + 1)


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({"loss": 1.0, "log": LONG}, f"metric 'log' is a string of {MAX_STRING + 1} characters"),
        ({"loss": 1.0, LONG: 2.0}, f"has {MAX_STRING + 1} characters, over {MAX_STRING}"),
        (
            {"loss": 1.0, **{f"m{i}": 0.0 for i in range(MAX_PARAMS)}},
            f"{MAX_PARAMS + 1} metrics, over {MAX_PARAMS}",
        ),
        ({"loss": 1.0, 3: 2.0}, "metric names must be strings, got 3"),
        ({"loss": 1.0, ("a", "b"): 2.0}, "metric names must be strings"),
        ({"loss": 1.0, "hist": [1, [2, 3]]}, "metric 'hist' has type list"),
        ({"loss": 1.0, "cfg": {"a": {"b": 1}}}, "metric 'cfg' has type dict"),
        ({"loss": 1.0, "w": np.ones((2, 2))}, "metric 'w' is an array of shape (2, 2)"),
        ({"loss": 1.0, "w": np.array([1.0])}, "metric 'w' is an array of shape (1,)"),
        ({"loss": 1.0, "b": b"raw"}, "metric 'b' has type bytes"),
        (
            {"loss": 1.0, **{f"m{i}": "y" * (MAX_STRING - 10) for i in range(200)}},
            "bytes of JSON, more than",
        ),
    ],
)
def test_results_no_record_can_hold_are_invalid_trials(result, why, tmp_path):
    values, reason = interpret_result(result, "loss")
    assert values is None and why in reason
    study = ah.Study(
        ah.Space(x=ah.Float(0, 1)), objective="loss", storage=tmp_path / "s.db", name="s"
    )
    study.optimize(lambda p: result, n_trials=1, progress=False)
    (trial,) = ah.Study.load("s", storage=tmp_path / "s.db").trials
    assert trial.state is ah.TrialState.FAILED and trial.failure is Failure.INVALID
    assert why in trial.error


def test_metrics_are_stored_as_plain_values():
    values, _ = interpret_result(
        {"loss": np.float32(0.5), Name("tag"): Name("ok"), "n": np.int64(3), "big": 10**400},
        "loss",
    )
    assert values == {"loss": 0.5, "tag": "ok", "n": 3.0, "big": None}
    assert [type(k) for k in values] == [str] * 4 and type(values["tag"]) is str


@pytest.mark.parametrize(
    ("metrics", "error", "why"),
    [
        ({"log": LONG}, ValueError, f"report: metric 'log' is a string of {MAX_STRING + 1}"),
        ({f"m{i}": 0.0 for i in range(MAX_PARAMS + 1)}, ValueError, "report: 1001 metrics"),
        ({"hist": [1.0, 2.0]}, TypeError, "report: metric 'hist' has type list"),
        ({"w": np.ones(3)}, TypeError, "report: metric 'w' is an array of shape (3,)"),
        ({LONG: 1.0}, ValueError, "report: metric name 'xxx"),
        ({"step": 2**63}, ValueError, "report: step must be a 64-bit integer, got 9223"),
    ],
)
def test_report_refuses_what_no_record_can_hold_at_the_call(metrics, error, why):
    def objective(params):
        with pytest.raises(error) as raised:
            if "step" in metrics:
                ah.report(metrics["step"], loss=1.0)
            else:
                ah.report(0, **metrics)
        assert str(raised.value).startswith(why)
        ah.report(1, loss=np.float32(0.5), ok=np.bool_(True))
        return 0.5

    out = run_trial(objective, {}, "loss", TrialContext(0, 1))
    assert out["status"] == "ok", out["error"]
    assert out["reports"][0]["metrics"] == {"loss": 0.5, "ok": True}
    assert type(out["reports"][0]["metrics"]["ok"]) is bool


# -- callbacks -------------------------------------------------------------------------------


def test_one_callable_is_a_callback_and_anything_else_is_named():
    seen = []
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    study.optimize(
        lambda p: p["x"], n_trials=2, callbacks=lambda s, t: seen.append(t.number), progress=False
    )
    both = (lambda s, t: seen.append(s), lambda s, t: seen.append(t.number))
    study.optimize(lambda p: p["x"], n_trials=1, callbacks=iter(both), progress=False)
    assert seen == [0, 1, study, 2]
    for bad, match in [
        (3, "callbacks must be a callable or a list of callables, got 3"),
        ("print", "callbacks must be a callable or a list of callables, got 'print'"),
        ({"a": print}, "callbacks must be a callable or a list"),
        ([print, None], "callbacks: None is not callable"),
    ]:
        with pytest.raises(TypeError, match=match):
            study.start(lambda p: 0.0, n_trials=1, callbacks=bad, progress=False)
    assert len(study.trials) == 3  # refused before any trial


# -- an objective dask cannot send -----------------------------------------------------------


def _closing_over_a_lock():
    lock = threading.Lock()

    def objective(params):
        with lock:
            return params["x"]

    return objective


def _closing_over_a_generator():
    noise = (0.1 * i for i in range(1000))

    def objective(params):
        return params["x"] + next(noise)

    return objective


@pytest.mark.slow
def test_an_objective_dask_cannot_pickle_is_refused_before_any_trial():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
        events = study.journal.query(lambda s: s.n_events)
        for make, cause in [
            (_closing_over_a_lock, "cannot pickle '_thread.lock' object"),
            (_closing_over_a_generator, "cannot pickle 'generator' object"),
        ]:
            with pytest.raises(TypeError, match="objective: dask cannot send") as raised:
                study.start(make(), n_trials=2, client=client, progress=False)
            assert f"'{make.__name__}.<locals>.objective'" in str(raised.value)
            assert cause in str(raised.value)
            assert study.trials == [] and study.journal.query(lambda s: s.n_events) == events
        study.optimize(lambda p: p["x"], n_trials=2, client=client, progress=False)
        assert [t.state for t in study.trials] == [ah.TrialState.COMPLETE] * 2


def test_distribution_from_spec_raises_value_errors_only():
    for spec in ({"type": "float"}, {"type": "int", "low": 0, "high": "3"}, "float", 3):
        with pytest.raises(ValueError):
            Distribution.from_spec(spec)


def test_a_trial_whose_record_was_skipped_is_refused_by_name(tmp_path):
    import json
    import sqlite3
    import zlib

    path = tmp_path / "runs.db"
    study = ah.Study(ah.Space(x=ah.Float(0.0, 1.0)), storage=path, name="s")
    study.add_trial({"x": 0.5}, 1.0)
    study.storage.close()
    bad = json.dumps({"kind": "trial_asked", "time": 1.0, "number": 1, "params": {"x": 7.0}})
    with sqlite3.connect(path) as db:  # trial 1 asked outside the space: skipped on load
        db.execute(
            "INSERT INTO events (study, seq, payload, crc) VALUES ('s', 3, ?, ?)",
            (bad, zlib.crc32(bad.encode())),
        )
    with pytest.warns(ah.storage.CorruptRecordWarning):
        again = ah.Study.load("s", storage=path)
    for call in (lambda: again.tell(1, 0.5), lambda: again.stop_trial(1)):
        with pytest.raises(ValueError, match="trial: no trial 1"):
            call()
    assert again.add_trial({"x": 0.25}, 2.0).number == 2  # its number stays taken


def test_a_study_whose_description_is_over_one_record_is_refused_naming_space():
    import json

    from asynchpo._limits import MAX_RECORD_BYTES

    def size(params):
        return len(json.dumps(ah.Space(params).to_spec(), separators=(",", ":")))

    params = {f"p{i}": ah.Categorical(["a" * 9990 + str(j) for j in range(10)]) for i in range(10)}
    k = 0
    while (room := MAX_RECORD_BYTES - size(params)) > 2000:  # a space just under the limit
        params[f"q{k}"] = ah.Categorical(["b" * min(9990, room // 2 - 40)])
        k += 1
    space = ah.Space(params)  # fits on its own
    with pytest.raises(ValueError, match="space: the study's description is not one record"):
        ah.Study(space, objective="o" * 9999)  # with its objective's name it does not
