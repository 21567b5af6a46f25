"""What each scheduler decides, and the arguments it refuses."""

from __future__ import annotations

import pytest

import asynchpo as ah
from asynchpo.schedulers import Decision, Progress


def p(number: int, resource: float, loss: float | None) -> Progress:
    return Progress(number, {}, int(resource), float(resource), loss, {})


def test_median_stops_a_trial_worse_than_the_median_of_the_others_at_that_point():
    s = ah.MedianStopping(min_trials=3)
    for n, loss in enumerate([1.0, 2.0, 3.0]):
        assert s.on_report(p(n, 1, loss)) is Decision.CONTINUE  # too few others yet
    assert s.on_report(p(3, 1, 2.5)) is Decision.STOP  # median of 1, 2, 3 is 2
    assert s.on_report(p(4, 1, 1.5)) is Decision.CONTINUE
    # its best so far counts: a bad report after a good one does not stop it
    s.on_report(p(4, 2, 0.1))
    for n in range(3):
        s.on_report(p(n, 3, 1.0))
    assert s.on_report(p(4, 3, 5.0)) is Decision.CONTINUE


def test_median_waits_for_the_grace_period():
    s = ah.MedianStopping(grace=5, min_trials=1)
    s.on_report(p(0, 1, 0.0))
    assert s.on_report(p(1, 1, 9.0)) is Decision.CONTINUE
    s.on_report(p(0, 5, 0.0))
    assert s.on_report(p(1, 5, 9.0)) is Decision.STOP


def test_asha_rungs_and_the_stopping_rule():
    s = ah.ASHA(27, min_resource=1, reduction_factor=3)
    assert s.rungs == [1.0, 3.0, 9.0]
    assert s.on_report(p(0, 1, 0.5)) is Decision.CONTINUE  # alone at the rung
    assert s.on_report(p(1, 1, 0.9)) is Decision.STOP  # outside the best third
    assert s.on_report(p(2, 1, 0.1)) is Decision.CONTINUE
    assert s.on_report(p(0, 2, 0.9)) is Decision.CONTINUE  # between rungs: no decision
    assert s.rung_of(0) == 0 and s.rung_of(7) is None
    assert s.on_report(p(0, 27, 0.9)) is Decision.CONTINUE  # at the end: never stopped


def test_asha_with_a_named_resource_counts_it_not_the_step():
    s = ah.ASHA(10, resource="epoch", min_resource=2, reduction_factor=2)
    assert s.rungs == [2.0, 4.0, 8.0]


def test_promotion_pauses_until_the_rung_has_room_then_resumes_the_best():
    s = ah.ASHA(9, mode="promotion", reduction_factor=3)
    assert s.pauses and s.rungs == [1.0, 3.0]
    assert s.on_report(p(0, 1, 0.5)) is Decision.PAUSE  # floor(1/3) = 0 may go on
    assert s.on_report(p(1, 1, 0.7)) is Decision.PAUSE
    assert s.resume({0, 1}) is None
    assert s.resume({0, 1}, idle=True) == 0  # nothing new will start: rounded up
    assert s.on_report(p(2, 1, 0.9)) is Decision.PAUSE  # 3 there: the best (0) may go on
    assert s.resume({0, 1, 2}) == 0
    s.on_start(0, {})  # it was resumed
    assert s.resume({1, 2}) is None  # one in three: used up
    # the best of four now: the one place among the best third is its own (as in the paper,
    # a trial promoted earlier does not hold a place it no longer ranks for)
    assert s.on_report(p(3, 1, 0.1)) is Decision.CONTINUE
    assert s.on_report(p(4, 1, 0.8)) is Decision.PAUSE  # five: the one place is taken
    assert s.on_report(p(5, 1, 0.6)) is Decision.PAUSE  # six: room for 2, both promoted
    assert s.resume({1, 2, 4, 5}) is None


def test_hyperband_spreads_trials_over_brackets_the_same_way_every_time():
    a, b = ah.Hyperband(27, seed=4), ah.Hyperband(27, seed=4)
    assert [x.rungs for x in a.brackets] == [[1.0, 3.0, 9.0], [3.0, 9.0], [9.0]]
    assert a.weights[0] > a.weights[1] > a.weights[2]
    drawn = [a.bracket_of(n) for n in range(300)]
    assert drawn == [b.bracket_of(n) for n in range(300)]
    assert set(drawn) == {0, 1, 2}
    # a trial of the cautious bracket is not judged before its first rung (9)
    late = next(n for n in range(300) if a.bracket_of(n) == 2)
    early = next(n for n in range(300) if a.bracket_of(n) == 2 and n != late)
    assert a.on_report(p(late, 1, 0.0)) is Decision.CONTINUE
    assert a.on_report(p(early, 3, 9.0)) is Decision.CONTINUE


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: ah.ASHA(10, min_resource=20), "min_resource"),
        (lambda: ah.ASHA(10, min_resource=10), "min_resource"),
        (lambda: ah.ASHA(10, reduction_factor=1), "reduction_factor"),
        (lambda: ah.ASHA(10, reduction_factor=0.5), "reduction_factor"),
        (lambda: ah.ASHA(0), "max_resource"),
        (lambda: ah.ASHA(float("inf")), "max_resource"),
        (lambda: ah.ASHA("10"), "max_resource"),
        (lambda: ah.ASHA(10, min_resource=True), "min_resource"),
        (lambda: ah.ASHA(10, mode="halve"), "mode"),
        (lambda: ah.ASHA(10, resource=""), "resource"),
        (lambda: ah.ASHA(10, resource=3), "resource"),
        (lambda: ah.Hyperband(10, reduction_factor=1), "reduction_factor"),
        (lambda: ah.Hyperband(10, min_resource=11), "min_resource"),
        (lambda: ah.Hyperband(10, seed=-1), "seed"),
        (lambda: ah.MedianStopping(grace=-1), "grace"),
        (lambda: ah.MedianStopping(min_trials=0), "min_trials"),
    ],
)
def test_bad_arguments_are_refused_naming_them(make, named):
    with pytest.raises(ValueError, match=named):
        make()


def test_a_study_refuses_what_is_not_a_scheduler():
    with pytest.raises(TypeError, match="scheduler"):
        ah.Study(ah.Space(x=ah.Float(0, 1)), scheduler="asha")  # type: ignore[arg-type]


def test_pbt_replaces_the_worst_with_a_perturbed_copy_of_one_of_the_best():
    space = ah.Space(
        lr=ah.Float(1e-4, 1.0, log=True), units=ah.Int(8, 64), act=ah.Categorical(["a", "b", "c"])
    )
    s = ah.PBT(perturbation_interval=2, quantile=0.25, resample_probability=0.0)
    s.on_study(space)
    params = {n: {"lr": 10.0 ** -(n % 4 + 1), "units": 16 + n, "act": "b"} for n in range(8)}
    for n in range(8):
        s.on_start(n, params[n])
    for n in range(7):  # trials 0..6 report, each better than those before it
        assert s.on_report(Progress(n, params[n], 2, 2.0, 7.0 - n, {})) is Decision.CONTINUE
    assert s.propose() is None
    # trial 7 is the worst of eight: the worst quarter (2) holds it; it makes way for a copy
    assert s.on_report(Progress(7, params[7], 2, 2.0, 9.0, {})) is Decision.STOP
    proposal = s.propose()
    assert proposal is not None and proposal.parent in (5, 6)  # from the best quarter
    parent = params[proposal.parent]
    ratio = proposal.params["lr"] / parent["lr"]
    assert ratio == pytest.approx(0.8) or ratio == pytest.approx(1.2)
    assert proposal.params["act"] in ("a", "c") and 8 <= proposal.params["units"] <= 64
    assert s.propose() == proposal  # asking changes nothing
    s.on_start(8, proposal.params, parent=proposal.parent)  # the copy started
    assert s.propose() is None
    # a trial is looked at once per interval: not again before step 4
    assert s.on_report(Progress(6, params[6], 3, 3.0, 99.0, {})) is Decision.CONTINUE


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"perturbation_interval": 0}, "perturbation_interval"),
        ({"perturbation_interval": 2, "quantile": 0.6}, "quantile"),
        ({"perturbation_interval": 2, "quantile": 0}, "quantile"),
        ({"perturbation_interval": 2, "resample_probability": 1.5}, "resample_probability"),
        ({"perturbation_interval": 2, "perturb": ()}, "perturb"),
        ({"perturbation_interval": 2, "perturb": (0.8, -1)}, "perturb"),
        ({"perturbation_interval": 2, "seed": 1.5}, "seed"),
        ({"perturbation_interval": 4, "max_resource": 2}, "max_resource must be at least twice"),
        ({"perturbation_interval": 4, "max_resource": 7}, "perturbation_interval=4"),
    ],
)
def test_pbt_refuses_bad_arguments_naming_them(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ah.PBT(**kwargs)


def test_promotions_follow_the_models_forecast_when_there_is_one():
    s = ah.ASHA(9, mode="promotion", reduction_factor=3)
    for n, loss in enumerate([0.1, 0.5, 0.9, 0.7, 0.8, 0.6]):
        s.on_report(p(n, 1, loss))  # 0 goes on at once; the others pause
    paused = {1, 2, 3, 4, 5}
    assert s.resume(paused) == 1  # by the result at the rung: 1 (0.5) ranks second
    # the model expects trial 4 to end best: it ranks first among those not promoted
    ends = {0: 0.2, 1: 0.9, 2: 0.5, 3: 0.6, 4: 0.05, 5: 0.7}
    assert s.resume(paused, forecast=lambda trials: [ends[n] for n in trials]) == 4
    # a model with nothing to say leaves the results at the rung to decide
    assert s.resume(paused, forecast=lambda trials: None) == 1
