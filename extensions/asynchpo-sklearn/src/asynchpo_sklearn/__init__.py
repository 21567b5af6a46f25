"""scikit-learn's search API on asynchpo studies."""

from asynchpo_sklearn._search import AsyncSearchCV

__all__ = ["AsyncSearchCV"]
