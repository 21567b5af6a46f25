"""The README's study: tune an SVM on scikit-learn's digits, a data set that ships with it.

Each trial cross-validates a support-vector classifier (3 folds, reporting each fold's error
as it goes) and returns ``{"error": 1 - accuracy, "fit_time": seconds}``. It takes a fraction
of a second per trial, so a 60-trial study shows the whole loop in under a minute.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from asynchpo._report import report
from asynchpo.space import Categorical, Float, Space

__all__ = ["objective", "space"]


def space() -> Space:
    """The search space of the demo: wide enough that the best SVM (an RBF kernel with ``C``
    near 2 and ``gamma`` near 0.15 on these pixels scaled to [0, 1]) lies well inside it."""
    return Space(
        C=Float(1e-2, 1e4, log=True),
        gamma=Float(1e-4, 1e1, log=True),
        kernel=Categorical(["rbf", "sigmoid"]),
        shrinking=Categorical([True, False]),
    )


@functools.lru_cache(maxsize=1)
def _data() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the demo needs scikit-learn: pip install 'asynchpo[demo]'") from exc
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def objective(params: dict[str, Any]) -> dict[str, float]:
    """Cross-validated error of an SVC on the digits with ``params``; reports each fold."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    X, y = _data()
    t0, errors = time.perf_counter(), []
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for fold, (train, test) in enumerate(folds.split(X, y)):
        model = SVC(**params).fit(X[train], y[train])
        errors.append(1.0 - model.score(X[test], y[test]))
        report(fold, error=float(np.mean(errors)))
    return {"error": float(np.mean(errors)), "fit_time": time.perf_counter() - t0}
