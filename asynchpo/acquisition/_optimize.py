"""Maximizing an acquisition function over the unit cube: a free function, no model inside."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Score = Callable[[np.ndarray], np.ndarray]
Gradient = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def optimize_acquisition(
    score: Score,
    snap: Callable[[np.ndarray], np.ndarray],
    base: np.ndarray,
    anchors: np.ndarray,
    avoid: np.ndarray,
    rng: np.random.Generator,
    n_starts: int = 8,
    n_local: int = 32,
    n_anchor: int = 256,
    radii: tuple[float, ...] = (0.05, 0.015, 0.004),
    busy: np.ndarray | None = None,
    separation: float = 1e-3,
    gradient: Gradient | None = None,
    free: np.ndarray | None = None,
    n_polish: int = 4,
    max_iter: int = 40,
    screen: Score | None = None,
    n_screen: int = 256,
) -> tuple[np.ndarray, float]:
    """The best point found for ``score`` (higher is better), and its score.

    1. Candidates: the quasi-random ``base`` set (`c x d`) under a fresh random shift
       (Cranley-Patterson), plus Gaussian perturbations of the ``anchors`` (the best points
       so far, `a x d`) at two scales. With a ``screen`` (a cheaper score that ranks points
       much as ``score`` does), only its ``n_screen`` best candidates are scored.
    2. Refinement: from the ``n_starts`` best candidates, rounds of ``n_local`` Gaussian
       perturbations with shrinking ``radii``, each start moving to its best neighbour.
    3. A point equal (after ``snap``) to one of ``avoid`` (observed, failed or pending
       points), or within ``separation`` (in every coordinate) of one of ``busy`` (the
       running trials), is never returned while another candidate remains.
    4. With a ``gradient``, the ``n_polish`` best points then climb it by L-BFGS-B in the
       ``free`` (continuous) coordinates, within the unit cube, all at once as one problem
       (their sum: the starts are independent, so this is each start's own ascent, sharing
       a line search); a climbed point replaces its start when its score is higher and it
       is not excluded.

    Args:
        score: Scores of unit-cube points `m x d` (already snapped), `m`.
        snap: Moves points onto the values the space can take.
        base: Quasi-random points in the unit cube, `c x d`.
        anchors: Points to search around, `a x d`.
        avoid: Points not to return, `v x d`.
        rng: Random source.
        n_starts: Starting points of the refinement.
        n_local: Neighbours per start and round.
        n_anchor: Candidates around the anchors.
        radii: Standard deviations of the refinement rounds, in unit-cube units.
        busy: Points of running trials, `p x d`.
        separation: Least distance (max-norm, unit cube) from a running trial.
        gradient: Scores and their gradients (`m x d`) at unit-cube points, or None.
        free: The coordinates the gradient may move (default: all).
        n_polish: Points refined by gradient.
        max_iter: L-BFGS-B iterations.
        screen: A cheaper score to rank the candidates by first, or None.
        n_screen: Candidates that pass the screen.
    """
    busy = np.empty((0, base.shape[1])) if busy is None else busy

    def excluded(points: np.ndarray) -> np.ndarray:
        out: np.ndarray = _taken(points, avoid) | _near(points, busy, separation)
        return out

    d = base.shape[1]
    shifted = (base + rng.random(d)) % 1.0
    parts = [shifted]
    if len(anchors) and n_anchor:
        for sd in (0.1, 0.02):
            reps = max(1, n_anchor // (2 * len(anchors)))
            noise = rng.normal(0.0, sd, (len(anchors) * reps, d))
            parts.append(np.repeat(anchors, reps, axis=0) + noise)
    cands = snap(np.vstack(parts))
    if screen is not None and len(cands) > n_screen:
        cands = cands[np.argpartition(-screen(cands), n_screen)[:n_screen]]
    values = score(cands)
    # exclusion only matters for the candidates that could be chosen: check the best first
    order = np.argsort(-values)
    picked: list[int] = []
    for lo in range(0, len(order), 8 * n_starts):
        block = order[lo : lo + 8 * n_starts]
        picked.extend(block[~excluded(cands[block])][: n_starts - len(picked)])
        if len(picked) == n_starts:
            break
    if not picked:  # every candidate is taken: fall back to fresh random points
        fresh = snap(rng.random((4 * len(base) + 16, d)))
        left = fresh[~excluded(fresh)]
        cands = left if len(left) else fresh[:1]
        values = score(cands)
        picked = list(np.argsort(-values)[:n_starts])
    starts, best = cands[picked], values[picked]
    for radius in radii:
        trial = snap(
            np.repeat(starts, n_local, axis=0) + rng.normal(0.0, radius, (len(starts) * n_local, d))
        )
        tv = score(trial)
        tv[excluded(trial)] = -np.inf
        tv = tv.reshape(len(starts), n_local)
        arg = tv.argmax(axis=1)
        better = tv[np.arange(len(starts)), arg] > best
        trial = trial.reshape(len(starts), n_local, d)
        starts[better] = trial[better, arg[better]]
        best[better] = tv[better, arg[better]]
    if gradient is not None and n_polish:
        top = np.argsort(-best)[:n_polish]
        top = top[np.isfinite(best[top])]
        if len(top):
            climbed = snap(
                _climb(gradient, starts[top], np.arange(d) if free is None else free, max_iter)
            )
            cv = score(climbed)
            cv[excluded(climbed)] = -np.inf
            up = cv > best[top]
            starts[top[up]], best[top[up]] = climbed[up], cv[up]
    i = int(np.argmax(best))
    return starts[i], float(best[i])


def _climb(gradient: Gradient, starts: np.ndarray, free: np.ndarray, max_iter: int) -> np.ndarray:
    """``starts`` moved uphill on ``gradient`` in the ``free`` coordinates (L-BFGS-B)."""
    from scipy.optimize import minimize

    if not len(free):
        return starts
    shape = (len(starts), len(free))

    def negated(v: np.ndarray) -> tuple[float, np.ndarray]:
        points = starts.copy()
        points[:, free] = v.reshape(shape)
        values, grads = gradient(points)
        ok = np.isfinite(values)
        g = np.where(ok[:, None], grads[:, free], 0.0)
        return -float(values[ok].sum()), -g.ravel()

    x0 = starts[:, free].ravel()
    with np.errstate(all="ignore"):
        res = minimize(
            negated,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * len(x0),
            options={"maxiter": max_iter},
        )
    out = starts.copy()
    out[:, free] = np.clip(res.x, 0.0, 1.0).reshape(shape)
    return out


def point_keys(points: np.ndarray) -> np.ndarray:
    """One hashable key per row, equal for rows equal to 9 decimals."""
    rounded = np.ascontiguousarray(np.round(points, 9) + 0.0)  # + 0.0: no negative zeros
    return rounded.view(np.dtype((np.void, rounded.dtype.itemsize * rounded.shape[1]))).ravel()


def _taken(points: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` coincide with a row of ``avoid`` (both snapped)."""
    if not len(avoid) or not len(points):
        return np.zeros(len(points), dtype=bool)
    return np.asarray(np.isin(point_keys(points), point_keys(avoid)), dtype=bool)


def _near(points: np.ndarray, busy: np.ndarray, separation: float) -> np.ndarray:
    """Which rows of ``points`` lie within ``separation`` (max-norm) of a row of ``busy``."""
    if not len(busy) or not len(points) or separation <= 0:
        return np.zeros(len(points), dtype=bool)
    dist = np.abs(points[:, None, :] - busy[None, :, :]).max(axis=2)
    return np.asarray((dist < separation).any(axis=1), dtype=bool)
