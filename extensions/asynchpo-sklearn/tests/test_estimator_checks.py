"""scikit-learn's own estimator checks, the ones that apply to a search object."""

from asynchpo_sklearn import AsyncSearchCV
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

import asynchpo as ah

#: The checks that do not apply, and why.
NOT_FOR_A_SEARCH = {
    "check_dtype_object": (
        "an error inside a trial is recorded as that trial's failure; when every trial "
        "failed, the search raises ValueError quoting the first one's error (a TypeError here)"
    ),
    "check_non_transformer_estimators_n_iter": (
        "max_iter is the epochs of an incremental search, not an iterative solver's, so there "
        "is no n_iter_"
    ),
}


def _expected(estimator):
    return NOT_FOR_A_SEARCH


@parametrize_with_checks(
    [
        AsyncSearchCV(
            LogisticRegression(),
            {"C": ah.Float(0.1, 10.0, log=True)},
            n_trials=2,
            cv=2,
            random_state=0,
        ),
        AsyncSearchCV(
            Ridge(), {"alpha": ah.Float(0.1, 10.0, log=True)}, n_trials=2, cv=2, random_state=0
        ),
    ],
    expected_failed_checks=_expected,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
