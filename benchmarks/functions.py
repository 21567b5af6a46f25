"""Standard test functions with known minima, as (space, objective, optimum)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import asynchpo as ah


@dataclass(frozen=True)
class Problem:
    name: str
    bounds: list[tuple[float, float]]
    f: Callable[[np.ndarray], float]
    optimum: float
    budget: int

    @property
    def dim(self) -> int:
        return len(self.bounds)

    @property
    def names(self) -> list[str]:
        return [f"x{i}" for i in range(self.dim)]

    def space(self) -> ah.Space:
        return ah.Space(
            {n: ah.Float(lo, hi) for n, (lo, hi) in zip(self.names, self.bounds, strict=True)}
        )

    def objective(self, params: dict[str, float]) -> float:
        return float(self.f(np.array([params[n] for n in self.names])))


def branin(x: np.ndarray) -> float:
    a, b, c, r, s, t = 1, 5.1 / (4 * np.pi**2), 5 / np.pi, 6, 10, 1 / (8 * np.pi)
    return float(a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * np.cos(x[0]) + s)


_HA = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_HP = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_HALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: np.ndarray) -> float:
    return float(-(_HALPHA * np.exp(-(_HA * (x - _HP) ** 2).sum(axis=1))).sum())


def ackley(x: np.ndarray) -> float:
    d = len(x)
    return float(
        -20 * np.exp(-0.2 * np.sqrt((x**2).sum() / d))
        - np.exp(np.cos(2 * np.pi * x).sum() / d)
        + 20
        + np.e
    )


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    return float(
        np.sin(np.pi * w[0]) ** 2
        + ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2)).sum()
        + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    )


def rosenbrock(x: np.ndarray) -> float:
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


PROBLEMS = {
    "branin": Problem("Branin-2", [(-5, 10), (0, 15)], branin, 0.397887, 100),
    "hartmann6": Problem("Hartmann-6", [(0, 1)] * 6, hartmann6, -3.32237, 100),
    "ackley5": Problem("Ackley-5", [(-32.768, 32.768)] * 5, ackley, 0.0, 200),
    "levy10": Problem("Levy-10", [(-10, 10)] * 10, levy, 0.0, 200),
    "rosenbrock4": Problem("Rosenbrock-4", [(-5, 10)] * 4, rosenbrock, 0.0, 200),
}


# -- steep valleys: several narrow optima separated by flat regions --------------------------

_SHEKEL_C = np.array(
    [
        [4, 4, 4, 4], [1, 1, 1, 1], [8, 8, 8, 8], [6, 6, 6, 6], [3, 7, 3, 7],
        [2, 9, 2, 9], [5, 5, 3, 3], [8, 1, 8, 1], [6, 2, 6, 2], [7, 3.6, 7, 3.6],
    ],
    dtype=float,
)  # fmt: skip
_SHEKEL_B = 0.1 * np.array([1, 2, 2, 4, 4, 6, 3, 7, 5, 5], dtype=float)


def shekel10(x: np.ndarray) -> float:
    return float(-(1.0 / (((x - _SHEKEL_C) ** 2).sum(axis=1) + _SHEKEL_B)).sum())


def michalewicz(x: np.ndarray, m: int = 10) -> float:
    i = np.arange(1, len(x) + 1)
    return float(-(np.sin(x) * np.sin(i * x**2 / np.pi) ** (2 * m)).sum())


def wells(d: int, seed: int, n_wells: int = 10) -> Problem:
    """A member of a seeded family: ``n_wells`` Shekel-like wells at random centres of
    ``[0, 1]^d``, of random widths and depths, on a plateau that falls off only as the
    inverse square distance to them; its optimum is found by a local search from every
    centre (the wells are narrow enough that each holds one minimum)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng([seed, d, n_wells])
    centres = rng.uniform(0.05, 0.95, (n_wells, d))
    scale = rng.uniform(20.0, 150.0, n_wells)  # steepness: width ~ 1 / sqrt(scale)
    floor = rng.uniform(0.12, 0.6, n_wells)  # depth ~ 1 / floor
    floor[0] = 0.1  # one well is the deepest

    def f(x: np.ndarray) -> float:
        r2 = (((np.asarray(x) - centres) ** 2).sum(axis=1)) * scale
        return float(-(1.0 / (r2 + floor)).sum())

    best = min(minimize(f, c, method="L-BFGS-B", bounds=[(0.0, 1.0)] * d).fun for c in centres)
    return Problem(f"Wells-{d} #{seed}", [(0.0, 1.0)] * d, f, float(best), 200)


#: The steep-valley family: two classics and seeded random members in 4-8 dimensions.
VALLEYS = {
    "shekel10": Problem("Shekel-4 (m=10)", [(0, 10)] * 4, shekel10, -10.536284, 200),
    "michalewicz5": Problem("Michalewicz-5", [(0, np.pi)] * 5, michalewicz, -4.687658, 200),
    **{f"wells{d}-{s}": wells(d, s) for d, s in ((4, 0), (4, 1), (6, 0), (6, 1), (8, 0))},
}
ALL = {**PROBLEMS, **VALLEYS}
