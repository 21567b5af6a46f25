"""``AsyncSearchCV``: a hyperparameter search with scikit-learn's API, run as an asynchpo
study (its trials on dask workers, the data sent to each worker once)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable

import asynchpo as ah
from asynchpo.space import Distribution


def _delegate(name: str) -> Any:
    """``name`` of the best estimator, there only where the estimator has it."""

    def check(self: AsyncSearchCV) -> bool:
        getattr(self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator, name)
        return True

    def method(self: AsyncSearchCV, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return getattr(self.best_estimator_, name)(X)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``{name}`` of the best estimator, refit on all the data."
    return available_if(check)(method)


class _Shared:
    """Data sent once to every dask worker: the objective carries only its key.

    The data is scattered to the workers there are and published under a name, so that a
    worker that joins later fetches it once (its copy kept for the trials that follow).
    """

    _fetched: ClassVar[dict[str, Any]] = {}  # on a worker: the latest data it had to fetch
    _fetching: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, client: Any, value: Any):
        [self.future] = client.scatter([value], broadcast=True, hash=False)
        self.key, self.client = str(self.future.key), client
        client.publish_dataset(self.future, name=self.key)

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.key, self.future, self.client = state["key"], None, None

    def get(self) -> Any:
        from distributed import get_worker, worker_client

        try:
            return get_worker().data[self.key]
        except KeyError:  # a worker that joined after the data was scattered
            pass
        with _Shared._fetching:  # one fetch per worker, whatever runs in its threads
            if self.key not in _Shared._fetched:
                with worker_client() as client:
                    value = client.get_dataset(self.key).result()
                _Shared._fetched.clear()
                _Shared._fetched[self.key] = value
            return _Shared._fetched[self.key]

    def release(self) -> None:
        """Unpublish and forget the data, here and on the workers that fetched a copy
        (on the client, after the search)."""
        if self.client is not None:
            self.client.unpublish_dataset(self.key)
            self.client.run(_Shared.forget, self.key)
            self.future.release()
            self.client = self.future = None

    @staticmethod
    def forget(key: str) -> None:
        """On a worker: drop the copy of ``key`` it fetched, if it has one."""
        with _Shared._fetching:
            _Shared._fetched.pop(key, None)


class _Local:
    def __init__(self, value: Any):
        self.value = value

    def get(self) -> Any:
        return self.value

    def release(self) -> None:
        self.value = None


class _Data:
    """What every trial of a search reads, sent to the workers once (see :class:`_Shared`):
    the data, the folds' row indices, and the fit parameters."""

    def __init__(self, X: Any, y: Any, splits: list[Any], fit_params: dict[str, Any]):
        self.X, self.y, self.splits, self.fit_params = X, y, splits, fit_params
        self.n = _num_samples(X)

    def rows(self, rows: Any) -> tuple[Any, Any, dict[str, Any]]:
        """``X``, ``y`` and the fit parameters of one sample each (``sample_weight``...)
        at ``rows``; the other fit parameters as they are."""
        params = {
            k: _take(v, rows) if _is_arraylike(v) and _num_samples(v) == self.n else v
            for k, v in self.fit_params.items()
        }
        return _take(self.X, rows), _take(self.y, rows), params


def _take(data: Any, rows: Any) -> Any:
    return None if data is None else _safe_indexing(data, rows)


def _is_arraylike(v: Any) -> bool:
    return hasattr(v, "__len__") or hasattr(v, "shape") or hasattr(v, "__array__")


def _num_samples(v: Any) -> int | None:
    try:
        return int(v.shape[0]) if hasattr(v, "shape") else len(v)
    except (TypeError, IndexError):
        return None


class _CrossValidate:
    """The objective: cross-validates a clone of the estimator with a trial's params."""

    def __init__(self, estimator: Any, data: Any, scorer: Any):
        self.estimator, self.data, self.scorer = estimator, data, scorer

    def __call__(self, params: dict[str, Any]) -> dict[str, float]:
        data: _Data = self.data.get()
        out: dict[str, float] = {}
        scores, fits, scorings = [], [], []
        for k, (train, test) in enumerate(data.splits):
            model = clone(self.estimator).set_params(**params)
            X_train, y_train, fit_params = data.rows(train)
            X_test, y_test, _ = data.rows(test)
            t0 = time.perf_counter()
            model.fit(X_train, y_train, **fit_params)
            t1 = time.perf_counter()
            score = float(self.scorer(model, X_test, y_test))
            scorings.append(time.perf_counter() - t1)
            fits.append(t1 - t0)
            scores.append(score)
            out[f"split{k}_test_score"] = score
            ah.report(k, mean_test_score=float(np.mean(scores)))
        out.update(
            mean_test_score=float(np.mean(scores)),
            std_test_score=float(np.std(scores)),
            mean_fit_time=float(np.mean(fits)),
            std_fit_time=float(np.std(fits)),
            mean_score_time=float(np.mean(scorings)),
            std_score_time=float(np.std(scorings)),
        )
        return out


class _Incremental:
    """The objective with a scheduler: ``partial_fit`` one epoch at a time on the first
    split's training rows, scored on its test rows after each epoch and reported, so that
    the scheduler stops (or pauses) a hopeless trial early."""

    def __init__(
        self,
        estimator: Any,
        data: Any,
        scorer: Any,
        max_iter: int,
        classes: Any,
        checkpoints: bool,
    ):
        self.estimator, self.data, self.scorer = estimator, data, scorer
        self.max_iter, self.classes, self.checkpoints = max_iter, classes, checkpoints

    def __call__(self, params: dict[str, Any]) -> dict[str, float]:
        data: _Data = self.data.get()
        train, test = data.splits[0]
        X_train, y_train, kwargs = data.rows(train)
        X_test, y_test, _ = data.rows(test)
        if self.classes is not None:
            kwargs["classes"] = self.classes
        state = ah.restore()  # a paused trial resumes (or PBT copies) from its checkpoint
        if state is None:
            state = {"model": clone(self.estimator).set_params(**params), "epoch": 0}
            state.update(fit_time=0.0, score_time=0.0, score=np.nan)
        else:
            state["model"].set_params(**params)  # PBT may have perturbed them
        model = state["model"]
        for epoch in range(state["epoch"] + 1, self.max_iter + 1):
            t0 = time.perf_counter()
            model.partial_fit(X_train, y_train, **kwargs)
            t1 = time.perf_counter()
            score = float(self.scorer(model, X_test, y_test))
            state.update(epoch=epoch, score=score, fit_time=state["fit_time"] + t1 - t0)
            state["score_time"] += time.perf_counter() - t1
            if self.checkpoints:
                ah.checkpoint(state)
            ah.report(epoch, mean_test_score=score, fit_time=state["fit_time"])
        return {
            "split0_test_score": state["score"],
            "mean_test_score": state["score"],
            "std_test_score": 0.0,
            "mean_fit_time": state["fit_time"],
            "std_fit_time": 0.0,
            "mean_score_time": state["score_time"],
            "std_score_time": 0.0,
        }


class AsyncSearchCV(MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]
    """Search ``estimator``'s hyperparameters over ``space`` with an asynchpo study, with
    the API of scikit-learn's ``RandomizedSearchCV``.

    Each trial cross-validates a clone of ``estimator`` on one dask worker (or a local
    thread without ``client``); the data is scattered to the workers once, not sent with
    each trial. After ``fit``: ``best_params_``, ``best_score_``, ``best_estimator_`` (refit
    on all the data), ``cv_results_`` (the keys ``RandomizedSearchCV`` gives, so
    ``pandas.DataFrame(search.cv_results_)`` reads the same), ``predict`` and the other
    methods of the best estimator, and ``study_``, the study itself (its live view, plots,
    ``to_xarray``).

    With a ``scheduler`` (:class:`asynchpo.ASHA`, :class:`asynchpo.Hyperband`,
    :class:`asynchpo.MedianStopping`, :class:`asynchpo.PBT`) the search is incremental, as
    dask-ml's incremental searches are: the estimator must have ``partial_fit``; each trial
    trains on the first split's training rows one epoch (one ``partial_fit`` call) at a time
    up to ``max_iter``, is scored on that split's test rows after each epoch, and the
    scheduler stops the hopeless trials early. ``cv_results_`` then has one split and a
    ``partial_fit_calls`` column (the epochs each trial got); the pruned trials rank after
    the complete ones, and ``best_estimator_`` is refit with ``max_iter`` epochs.

    Args:
        estimator: A scikit-learn estimator (a pipeline too: parameters as ``step__name``).
        space: An :class:`asynchpo.Space`, or a dict of asynchpo distributions by
            parameter name.
        n_trials: How many configurations to try.
        cv: Folds, as scikit-learn's ``cv`` (an int, a splitter, or an iterable).
        scoring: As scikit-learn's ``scoring`` (one metric); larger is better.
        client: A dask ``distributed.Client`` to run the trials on.
        max_concurrent: How many trials at once (default: the client's worker threads).
        sampler: The study's sampler (default: :class:`asynchpo.GPSampler` seeded with
            ``random_state``); a copy is used, so ``fit`` twice starts afresh.
        scheduler: Stops (or pauses) trials early on their per-epoch scores (see above).
        max_iter: The epochs a trial runs to with a scheduler (default: the scheduler's
            ``max_resource``).
        random_state: The seed of the default sampler.
        refit: Whether to fit ``best_estimator_`` on all the data.
        storage: Where the study is kept (an SQLite path); default in memory.
        study_name: The study's name in ``storage``.
        checkpoint_dir: Where trials' checkpoints go, for schedulers that pause or copy
            trials (ASHA's promotion mode, PBT).
        progress: Whether to show a progress bar while it runs.

    Example:
        >>> import asynchpo as ah
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.svm import SVC
        >>> X, y = load_iris(return_X_y=True)
        >>> search = AsyncSearchCV(
        ...     SVC(), {"C": ah.Float(1e-2, 1e2, log=True)}, n_trials=4, cv=3, random_state=0
        ... ).fit(X, y)
        >>> sorted(search.best_params_)
        ['C']
    """

    def __init__(
        self,
        estimator: Any,
        space: ah.Space | Mapping[str, Distribution],
        *,
        n_trials: int = 20,
        cv: Any = None,
        scoring: Any = None,
        client: Any = None,
        max_concurrent: int | None = None,
        sampler: Any = None,
        scheduler: Any = None,
        max_iter: int | None = None,
        random_state: int | None = None,
        refit: bool = True,
        storage: Any = None,
        study_name: str | None = None,
        checkpoint_dir: Any = None,
        progress: bool = False,
    ):
        self.estimator, self.space, self.n_trials = estimator, space, n_trials
        self.cv, self.scoring, self.client = cv, scoring, client
        self.max_concurrent, self.sampler, self.scheduler = max_concurrent, sampler, scheduler
        self.max_iter, self.random_state, self.refit = max_iter, random_state, refit
        self.storage, self.study_name = storage, study_name
        self.checkpoint_dir, self.progress = checkpoint_dir, progress

    def _space(self) -> ah.Space:
        space = self.space if isinstance(self.space, ah.Space) else ah.Space(dict(self.space))
        known = self.estimator.get_params(deep=True)
        for name in space:
            if name not in known:
                raise ValueError(
                    f"space: {name!r} is not a parameter of {type(self.estimator).__name__}"
                )
        return space

    def _epochs(self) -> int | None:
        """``max_iter`` checked against the estimator and the scheduler (None: no scheduler)."""
        if self.scheduler is None:
            if self.max_iter is not None:
                raise ValueError("max_iter is for an incremental search: give a scheduler too")
            return None
        if not isinstance(self.scheduler, ah.BaseScheduler):
            raise TypeError(
                f"scheduler must be an asynchpo scheduler (ah.ASHA, ...), got "
                f"{type(self.scheduler).__name__}"
            )
        if not hasattr(self.estimator, "partial_fit"):
            raise ValueError(
                f"scheduler: {type(self.estimator).__name__} has no partial_fit, so it cannot "
                "be trained one epoch at a time; use an estimator with partial_fit "
                "(SGDClassifier, MLPClassifier, ...) or no scheduler"
            )
        if getattr(self.scheduler, "resource", "step") != "step":
            raise ValueError(
                f"scheduler: its resource must be 'step' (the epoch), got "
                f"{self.scheduler.resource!r}"
            )
        top = getattr(self.scheduler, "max_resource", None)
        epochs = self.max_iter if self.max_iter is not None else top
        if epochs is None:
            raise ValueError(
                f"max_iter: give the epochs a trial runs to ({type(self.scheduler).__name__} "
                "has no max_resource to take them from)"
            )
        if (
            isinstance(epochs, bool)
            or not isinstance(epochs, (int, float))
            or not float(epochs).is_integer()
            or int(epochs) < 1
        ):
            raise ValueError(f"max_iter must be an integer >= 1, got {epochs!r}")
        if top is not None and int(epochs) < top:
            raise ValueError(
                f"max_iter ({int(epochs)}) is below the scheduler's max_resource ({top:g}): "
                "no trial would reach its last rung"
            )
        return int(epochs)

    def fit(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> AsyncSearchCV:
        """Run the search on ``X``, ``y``, then refit the best estimator."""
        if isinstance(self.n_trials, bool) or not (
            isinstance(self.n_trials, int) and self.n_trials >= 1
        ):
            raise ValueError(f"n_trials must be an integer >= 1, got {self.n_trials!r}")
        if not isinstance(self.refit, bool):
            raise ValueError(
                f"refit must be True or False (one metric, so nothing to choose), got "
                f"{self.refit!r}"
            )
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ValueError(
                f"scoring must be one metric (a name or a scorer), got {self.scoring!r}: "
                "the study optimizes one; log the others from a scorer of your own"
            )
        space, epochs = self._space(), self._epochs()
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, groups))
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        sampler = copy.deepcopy(self.sampler)
        if sampler is None:
            sampler = ah.GPSampler(seed=self.random_state)
        study = ah.Study(
            space,
            objective="mean_test_score",
            direction="maximize",
            sampler=sampler,
            storage=self.storage,
            name=self.study_name,
            scheduler=copy.deepcopy(self.scheduler),
            checkpoint_dir=self.checkpoint_dir,
        )
        everything = _Data(X, y, splits, fit_params)
        data: _Shared | _Local = (
            _Shared(self.client, everything) if self.client is not None else _Local(everything)
        )
        objective: _CrossValidate | _Incremental
        if epochs is None:
            objective = _CrossValidate(self.estimator, data, scorer)
        else:
            classes = np.unique(y) if is_classifier(self.estimator) else None
            pauses = bool(self.scheduler.pauses or self.scheduler.needs_checkpoints)
            objective = _Incremental(self.estimator, data, scorer, epochs, classes, pauses)
        try:
            study.optimize(
                objective,
                n_trials=self.n_trials,
                client=self.client,
                max_concurrent=self.max_concurrent,
                progress=self.progress,
            )
        finally:
            data.release()
        self.study_, self.scorer_, self.multimetric_ = study, scorer, False
        self.n_splits_ = len(splits) if epochs is None else 1
        self.cv_results_ = _cv_results(study, space, self.n_splits_, epochs)
        if not study.get_trials(["complete"]):
            errors = [t.error for t in study.trials if t.error]
            raise ValueError(
                f"none of the {len(study.trials)} trials completed (search.study_.trials says "
                "why, trial by trial)"
                + (f"; the first one failed with:\n{errors[0]}" if errors else "")
            )
        self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        if self.refit:
            t0 = time.perf_counter()
            model = clone(self.estimator).set_params(**self.best_params_)
            if epochs is None:
                model.fit(X, y, **fit_params)
            else:
                kwargs = dict(fit_params)
                if is_classifier(self.estimator):
                    kwargs["classes"] = np.unique(y)
                for _ in range(epochs):
                    model.partial_fit(X, y, **kwargs)
            self.best_estimator_ = model
            self.refit_time_ = time.perf_counter() - t0
            if hasattr(model, "classes_"):
                self.classes_ = model.classes_
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(model, name):
                    setattr(self, name, getattr(model, name))
        return self

    def __sklearn_tags__(self) -> Any:
        # as scikit-learn's own searches: a classifier, a regressor, sparse or not as the
        # estimator it searches
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = copy.deepcopy(inner.classifier_tags)
        tags.regressor_tags = copy.deepcopy(inner.regressor_tags)
        tags.target_tags = copy.deepcopy(inner.target_tags)
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags

    def __getstate__(self) -> dict[str, Any]:
        # the study holds a live journal (locks, a database connection): a pickled search
        # keeps its results and its best estimator, and reopens the study from its storage
        state = dict(self.__dict__)
        study = state.pop("study_", None)
        if study is not None:
            state["_study_name"] = study.name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        name = state.pop("_study_name", None)
        self.__dict__.update(state)
        if name is not None and self.storage is not None:
            self.study_ = ah.Study.load(name, self.storage)

    def score(self, X: Any, y: Any = None) -> float:
        """The scorer's value of the best estimator on ``X``, ``y``."""
        check_is_fitted(self, "best_estimator_")
        return float(self.scorer_(self.best_estimator_, X, y))

    predict = _delegate("predict")
    predict_proba = _delegate("predict_proba")
    predict_log_proba = _delegate("predict_log_proba")
    decision_function = _delegate("decision_function")
    transform = _delegate("transform")
    inverse_transform = _delegate("inverse_transform")


#: The trials ``cv_results_`` lists, by tier: complete, stopped early (pruned, or paused and
#: never resumed), failed.
_TIERS = {
    ah.TrialState.COMPLETE: 0,
    ah.TrialState.PRUNED: 1,
    ah.TrialState.PAUSED: 1,
    ah.TrialState.FAILED: 2,
}


def _cv_results(
    study: ah.Study, space: ah.Space, n_splits: int, epochs: int | None
) -> dict[str, Any]:
    """The trials as ``RandomizedSearchCV.cv_results_``: failed ones with NaN scores; a
    trial stopped early with its latest reported score, ranked after every complete one."""
    trials = [t for t in study.trials if t.state in _TIERS]
    rows: list[dict[str, float]] = []
    for t in trials:
        row = {k: float(v) for k, v in t.values.items() if isinstance(v, (int, float))}
        if _TIERS[t.state] == 1 and t.reports:
            last = t.reports[-1].metrics
            row["mean_test_score"] = row["split0_test_score"] = float(last["mean_test_score"])
            row["mean_fit_time"] = float(last.get("fit_time", np.nan))
            row["std_test_score"] = row["std_fit_time"] = 0.0
        rows.append(row)

    def column(key: str) -> np.ndarray:
        return np.array([row.get(key, np.nan) for row in rows], dtype=float)

    n = len(trials)
    out: dict[str, Any] = {}
    for key in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"):
        out[key] = column(key)
    for name in space:
        values = [t.params.get(name) for t in trials]
        numbers = all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values
        )
        if numbers and values:  # as scikit-learn >= 1.5: a numeric dtype where it can
            out[f"param_{name}"] = np.ma.MaskedArray(np.array(values), mask=False)
            continue
        param = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for i, t in enumerate(trials):
            if name in t.params:
                param[i] = t.params[name]
        out[f"param_{name}"] = param
    out["params"] = [dict(t.params) for t in trials]
    for k in range(n_splits):
        out[f"split{k}_test_score"] = column(f"split{k}_test_score")
    for key in ("mean_test_score", "std_test_score"):
        out[key] = column(key)
    # complete trials first, then those stopped early, then failed ones; by score in each
    mean = out["mean_test_score"]
    tiers = np.array([_TIERS[t.state] for t in trials])
    tiers, loss = np.where(np.isnan(mean), 3, tiers), np.nan_to_num(-mean, nan=np.inf)
    rank, ties, previous = np.empty(n, dtype=np.int32), 0, None
    for position, i in enumerate(np.lexsort((loss, tiers))):
        if (tiers[i], loss[i]) != previous:
            ties, previous = position + 1, (tiers[i], loss[i])
        rank[i] = ties
    out["rank_test_score"] = rank
    if epochs is not None:
        out["partial_fit_calls"] = np.array(
            [epochs if t.state is ah.TrialState.COMPLETE else len(t.reports) for t in trials],
            dtype=np.int32,
        )
    return out
