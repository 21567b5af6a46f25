import pickle

import numpy as np
import pandas as pd
import pytest
from asynchpo_sklearn import AsyncSearchCV
from asynchpo_sklearn._search import _CrossValidate, _Data, _Shared
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import asynchpo as ah


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


SPACE = {
    "svc__C": ah.Float(1e-2, 1e3, log=True),
    "svc__gamma": ah.Float(1e-4, 1.0, log=True),
}


def test_a_pipeline_is_tuned_on_a_local_cluster_like_randomized_search(digits, client):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), SVC())
    search = AsyncSearchCV(
        pipe, SPACE, n_trials=12, cv=3, client=client, sampler=ah.RandomSampler(0)
    )
    search.fit(X, y)
    theirs = RandomizedSearchCV(
        pipe,
        {"svc__C": loguniform(1e-2, 1e3), "svc__gamma": loguniform(1e-4, 1.0)},
        n_iter=3,
        cv=3,
        random_state=0,
    ).fit(X, y)
    ours, ref = pd.DataFrame(search.cv_results_), pd.DataFrame(theirs.cv_results_)
    assert list(ours.columns) == list(ref.columns)
    assert dict(ours.dtypes) == dict(ref.dtypes)
    assert len(ours) == 12 and ours["rank_test_score"].min() == 1
    assert search.best_score_ == ours["mean_test_score"].max()
    assert search.best_params_ == ours.loc[ours["rank_test_score"].idxmin(), "params"]
    assert search.best_score_ > 0.8
    assert search.best_estimator_.get_params()["svc__C"] == search.best_params_["svc__C"]
    assert (search.predict(X) == search.best_estimator_.predict(X)).all()
    assert search.score(X, y) == search.best_estimator_.score(X, y)
    assert len(search.study_.trials) == 12 and search.n_splits_ == 3
    # every fold was reported as it came
    assert all(len(t.reports) == 3 for t in search.study_.get_trials(["complete"]))


def test_the_data_goes_to_the_workers_once_not_with_every_trial(digits, client):
    X, y = digits
    splits = list(KFold(5).split(X))
    weights = np.ones(len(y))
    shared = _Shared(client, _Data(X, y, splits, {"sample_weight": weights}))
    objective = _CrossValidate(SVC(), shared, None)
    # the data, the folds and the fit parameters stay on the workers: only the key travels
    assert len(pickle.dumps(objective)) < 2_000 < X.nbytes / 100
    back = pickle.loads(pickle.dumps(shared))
    assert back.key == shared.key and back.future is None
    got = client.submit(lambda s: s.get().X.shape, back, pure=False).result()
    assert got == X.shape
    # a worker that joins after the scatter fetches the data by its published name
    before = set(client.scheduler_info()["workers"])
    client.cluster.scale(3)
    client.wait_for_workers(3, timeout=60)
    [late] = set(client.scheduler_info()["workers"]) - before
    assert not client.who_has([shared.future])[shared.key].count(late)
    got = client.submit(lambda s: s.get().y.sum(), back, workers=[late], pure=False).result()
    assert got == y.sum()
    held = client.run(lambda: sorted(_Shared._fetched))
    assert held[late] == [shared.key]  # the late worker keeps the copy it fetched
    shared.release()
    assert shared.key not in client.list_datasets()
    assert all(keys == [] for keys in client.run(lambda: sorted(_Shared._fetched)).values())
    client.cluster.scale(2)


def test_without_a_client_it_runs_locally_and_a_failing_fit_is_a_nan_row(digits):
    X, y = digits
    space = {"C": ah.Float(1e-3, 1e3, log=True), "solver": ah.Categorical(["lbfgs", "bogus"])}
    search = AsyncSearchCV(
        LogisticRegression(max_iter=200), space, n_trials=10, cv=3, sampler=ah.RandomSampler(1)
    ).fit(X, y)
    results = pd.DataFrame(search.cv_results_)
    bad = results["param_solver"] == "bogus"
    assert bad.any() and results.loc[bad, "mean_test_score"].isna().all()
    assert (results.loc[bad, "rank_test_score"] == results["rank_test_score"].max()).all()
    assert search.best_params_["solver"] == "lbfgs"


def test_bad_input_is_refused_before_any_trial_naming_it(digits):
    X, y = digits
    with pytest.raises(ValueError, match="space: 'gama' is not a parameter of SVC"):
        AsyncSearchCV(SVC(), {"gama": ah.Float(1e-3, 1.0)}, n_trials=3).fit(X, y)
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1, got 0"):
        AsyncSearchCV(SVC(), {"C": ah.Float(1e-3, 1.0)}, n_trials=0).fit(X, y)


def test_it_clones_and_reports_its_params_as_an_estimator():
    from sklearn.base import clone

    search = AsyncSearchCV(SVC(), {"C": ah.Float(1e-3, 1.0)}, n_trials=3, cv=2)
    again = clone(search)
    assert again.get_params()["n_trials"] == 3 and again.get_params()["estimator__C"] == 1.0
    assert not hasattr(again, "predict_proba")  # SVC without probability=True has none


INCREMENTAL = {
    "alpha": ah.Float(1e-6, 1.0, log=True),
    "eta0": ah.Float(1e-4, 1.0, log=True),
}


def _sgd():
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(learning_rate="constant", random_state=0)


def test_partial_fit_with_asha_stops_hopeless_trials_early_on_a_local_cluster(digits, client):
    X, y = digits
    search = AsyncSearchCV(
        _sgd(),
        INCREMENTAL,
        n_trials=12,
        cv=3,
        client=client,
        scheduler=ah.ASHA(max_resource=9, reduction_factor=3),
        sampler=ah.RandomSampler(2),
    ).fit(X, y)
    results = pd.DataFrame(search.cv_results_)
    states = [t.state for t in search.study_.trials]
    calls = results["partial_fit_calls"]
    assert states.count(ah.TrialState.PRUNED) >= 4  # ASHA stops two in three at each rung
    assert calls.max() == 9 and calls.min() < 9 and calls.sum() < 12 * 9
    for t, n in zip(search.study_.trials, calls, strict=True):
        assert [r.step for r in t.reports] == list(range(1, n + 1))  # one report per epoch
    complete = results[[s is ah.TrialState.COMPLETE for s in states]]
    pruned = results[[s is ah.TrialState.PRUNED for s in states]]
    assert complete["rank_test_score"].max() < pruned["rank_test_score"].min()
    assert search.best_score_ == complete["mean_test_score"].max()
    assert list(search.best_estimator_.classes_) == sorted(set(y))
    assert search.score(X, y) > 0.5


def test_promotion_mode_pauses_and_resumes_trials_from_their_checkpoints(digits, tmp_path):
    X, y = digits
    search = AsyncSearchCV(
        _sgd(),
        INCREMENTAL,
        n_trials=9,
        cv=3,
        max_concurrent=3,
        scheduler=ah.ASHA(max_resource=9, reduction_factor=3, mode="promotion"),
        sampler=ah.RandomSampler(3),
        checkpoint_dir=tmp_path,
        refit=False,
    ).fit(X, y)
    done = search.study_.get_trials(["complete"])
    resumed = [t for t in done if t.attempts > 1]
    assert resumed and any(p.is_dir() for p in tmp_path.iterdir())
    for t in done:  # a resumed trial goes on from its checkpoint: every epoch once, in order
        assert [r.step for r in t.reports] == list(range(1, 10))
    results = pd.DataFrame(search.cv_results_)
    assert len(results) == 9  # the paused trials too, with the epochs they got
    assert sorted(results["partial_fit_calls"])[-len(done) :] == [9] * len(done)
    assert not hasattr(search, "best_estimator_")


def test_an_incremental_search_refuses_what_cannot_work_before_any_trial(digits):
    X, y = digits
    asha = ah.ASHA(max_resource=9)
    with pytest.raises(ValueError, match="scheduler: SVC has no partial_fit"):
        AsyncSearchCV(SVC(), {"C": ah.Float(1e-3, 1.0)}, scheduler=asha).fit(X, y)
    with pytest.raises(ValueError, match="max_iter is for an incremental search"):
        AsyncSearchCV(_sgd(), INCREMENTAL, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match=r"max_iter \(5\) is below the scheduler's max_resource"):
        AsyncSearchCV(_sgd(), INCREMENTAL, scheduler=asha, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="max_iter: give the epochs a trial runs to"):
        AsyncSearchCV(_sgd(), INCREMENTAL, scheduler=ah.MedianStopping()).fit(X, y)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1, got 'ten'"):
        AsyncSearchCV(_sgd(), INCREMENTAL, scheduler=ah.MedianStopping(), max_iter="ten").fit(X, y)
    with pytest.raises(TypeError, match="scheduler must be an asynchpo scheduler"):
        AsyncSearchCV(_sgd(), INCREMENTAL, scheduler="asha").fit(X, y)


def test_fit_leaves_its_parameters_as_given_and_a_second_fit_starts_afresh(digits):
    X, y = digits
    sampler = ah.RandomSampler(4)
    search = AsyncSearchCV(
        LogisticRegression(max_iter=300),
        {"C": ah.Float(1e-2, 1e2)},
        n_trials=3,
        cv=2,
        sampler=sampler,
    )
    first = search.fit(X, y).cv_results_["params"]
    assert search.sampler is sampler
    assert search.fit(X, y).cv_results_["params"] == first


def test_a_fitted_search_pickles_and_reopens_its_study_from_its_storage(digits, tmp_path):
    X, y = digits
    search = AsyncSearchCV(
        LogisticRegression(max_iter=300),
        {"C": ah.Float(1e-2, 1e2, log=True)},
        n_trials=3,
        cv=2,
        random_state=0,
        storage=tmp_path / "search.db",
        study_name="logreg",
    ).fit(X, y)
    back = pickle.loads(pickle.dumps(search))
    assert (back.predict(X) == search.predict(X)).all()
    assert back.best_params_ == search.best_params_
    assert [t.params for t in back.study_.trials] == [t.params for t in search.study_.trials]
    in_memory = AsyncSearchCV(
        LogisticRegression(max_iter=300), {"C": ah.Float(1e-2, 1e2)}, n_trials=2, cv=2
    ).fit(X, y)
    assert not hasattr(pickle.loads(pickle.dumps(in_memory)), "study_")


def test_per_sample_fit_parameters_are_cut_to_each_fold_as_scikit_learn_does(digits, client):
    X, y = digits
    weights = np.where(y == 3, 0.0, 1.0)  # the 3s count for nothing in training
    space = {"C": ah.Float(1e-2, 1e2, log=True)}
    search = AsyncSearchCV(
        LogisticRegression(max_iter=300), space, n_trials=3, cv=3, client=client, random_state=0
    ).fit(X, y, sample_weight=weights)
    assert len(search.study_.get_trials(["complete"])) == 3
    # with the 3s weighed out, the refit model never predicts a 3; it does without weights
    assert 3 not in set(search.predict(X))
    assert 3 in set(LogisticRegression(max_iter=300).fit(X, y).predict(X))
    theirs = RandomizedSearchCV(LogisticRegression(max_iter=300), {"C": [1.0]}, n_iter=1, cv=3)
    theirs.fit(X, y, sample_weight=weights)  # the same call scikit-learn's own search takes
    incremental = AsyncSearchCV(
        _sgd(), INCREMENTAL, n_trials=2, cv=3, scheduler=ah.ASHA(max_resource=3), random_state=0
    ).fit(X, y, sample_weight=weights)
    assert len(incremental.study_.get_trials(["complete", "pruned"])) == 2


def test_several_metrics_or_a_refit_rule_are_refused_before_any_trial(digits):
    X, y = digits
    space = {"C": ah.Float(1e-2, 1e2, log=True)}
    with pytest.raises(ValueError, match="scoring must be one metric"):
        AsyncSearchCV(SVC(), space, scoring=["accuracy", "f1_macro"]).fit(X, y)
    with pytest.raises(ValueError, match="scoring must be one metric"):
        AsyncSearchCV(SVC(), space, scoring={"a": "accuracy"}).fit(X, y)
    with pytest.raises(ValueError, match="refit must be True or False"):
        AsyncSearchCV(SVC(), space, refit="accuracy").fit(X, y)
