from __future__ import annotations

import math

import numpy as np
import pytest

import asynchpo as ah
from asynchpo._report import TrialContext, interpret_result, run_trial


class Scalar:  # what a framework's 0-d tensor looks like: it converts with float()
    def __float__(self):
        return 0.5


@pytest.mark.parametrize(
    ("result", "values"),
    [
        (1, {"loss": 1.0}),
        (np.float32(0.25), {"loss": 0.25}),
        (np.array(2.0), {"loss": 2.0}),
        (Scalar(), {"loss": 0.5}),
        (
            {"loss": 0.1, "acc": np.float64(0.9), "tag": "ok", "n": None},
            {"loss": 0.1, "acc": 0.9, "tag": "ok", "n": None},
        ),
        ({"loss": 0.1, "aux": math.nan}, {"loss": 0.1, "aux": None}),
    ],
)
def test_valid_results(result, values):
    assert interpret_result(result, "loss") == (values, None)


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (True, "returned bool"),
        (None, "returned NoneType"),
        ("0.1", "returned str"),
        (math.nan, "returned nan"),
        (-math.inf, "returned -inf"),
        ({"acc": 1.0}, "without 'loss'"),
        ({"loss": 1.0, 3: 2.0}, "metric names must be strings"),
        ({"loss": 1.0, "weights": [1, 2]}, "metric 'weights' has type list"),
        ({"loss": "low"}, "returned str for 'loss'"),
        (np.zeros(3), "is not a number"),
    ],
)
def test_invalid_results_say_why(result, why):
    values, reason = interpret_result(result, "loss")
    assert values is None and why in reason


def test_run_trial_catches_everything_and_keeps_reports():
    def objective(p):
        ah.report(0, loss=3.0)
        ah.report(1, loss=2.0, lr=np.float64(0.1))
        raise RuntimeError("diverged")

    out = run_trial(objective, {"x": 1}, "loss", TrialContext(7, 1))
    assert out["status"] == "error" and "RuntimeError: diverged" in out["error"]
    assert [(r["number"], r["step"], r["seq"]) for r in out["reports"]] == [(7, 0, 0), (7, 1, 1)]
    assert out["reports"][1]["metrics"] == {"loss": 2.0, "lr": 0.1}
    assert out["end"] >= out["start"]


def test_run_trial_pruned_at_the_last_report():
    def objective(p):
        ah.report(4, loss=3.0)
        raise ah.Pruned()

    out = run_trial(objective, {}, "loss", TrialContext(0, 1))
    assert out["status"] == "pruned" and out["step"] == 4


def test_report_refuses_bad_metrics():
    def objective(p):
        ah.report(0, weights=[1.0, 2.0])
        return 1.0

    out = run_trial(objective, {}, "loss", TrialContext(0, 1))
    assert out["status"] == "error" and "metric 'weights' has type list" in out["error"]
    out = run_trial(lambda p: ah.report(0), {}, "loss", TrialContext(0, 1))
    assert "give at least one metric" in out["error"]
