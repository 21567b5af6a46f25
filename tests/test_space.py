from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asynchpo import Categorical, Float, Int, Space
from asynchpo.space import Distribution


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Float(1.0, 1.0), "low must be < high"),
        (lambda: Float(2.0, 1.0), "low must be < high"),
        (lambda: Float(0.0, 1.0, log=True), "log=True needs low > 0"),
        (lambda: Float(-1.0, 1.0, log=True), "log=True needs low > 0"),
        (lambda: Float("0", 1.0), "low must be a finite number"),
        (lambda: Float(0.0, math.inf), "high must be a finite number"),
        (lambda: Float(True, 2.0), "low must be a finite number"),
        (lambda: Float(0.0, 1.0, step=0.3), "multiple of step"),
        (lambda: Float(0.0, 1.0, step=-0.1), "step must be a finite number > 0"),
        (lambda: Float(1e-3, 1.0, log=True, step=0.1), "step cannot be combined with log"),
        (lambda: Float(0.0, 1.0, log="yes"), "log must be True or False"),
        (lambda: Int(3, 3), "low must be < high"),
        (lambda: Int(1.5, 3), "low must be an integer"),
        (lambda: Int(0, 8, log=True), "log=True needs low >= 1"),
        (lambda: Int(1, 8, step=0), "step must be an integer >= 1"),
        (lambda: Int(0, 9, step=2), "multiple of step"),
        (lambda: Int(1, 9, log=True, step=2), "step must be 1 with log=True"),
        (lambda: Categorical([]), "must not be empty"),
        (lambda: Categorical("abc"), "choices must be a list"),
        (lambda: Categorical(["a", "a"]), "distinct"),
        (lambda: Categorical([[1], 2]), "each choice must be"),
        (lambda: Categorical([math.nan]), "each choice must be"),
        (lambda: Space(), "at least one parameter"),
        (lambda: Space({"x": Float(0, 1)}, x=Int(0, 3)), "duplicate parameter name 'x'"),
        (lambda: Space(x=(0, 1)), "parameter 'x' must be Float, Int or Categorical"),
        (lambda: Space({"": Float(0, 1)}), "non-empty strings"),
    ],
)
def test_bad_spaces_are_refused_with_a_named_reason(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bools_and_ints_stay_apart_in_categoricals():
    c = Categorical([True, 1, "1", None])
    assert [c.decode(c.encode(v)) for v in c.choices] == [True, 1, "1", None]
    assert type(c.decode(c.encode(1))) is int


def test_check_names_the_parameter():
    space = Space(lr=Float(1e-4, 1e-1, log=True), depth=Int(1, 8), act=Categorical(["a", "b"]))
    with pytest.raises(ValueError, match="'depth'=9 is outside"):
        space.check({"lr": 1e-3, "depth": 9, "act": "a"})
    with pytest.raises(ValueError, match="'depth' must be an integer"):
        space.check({"lr": 1e-3, "depth": 2.5, "act": "a"})
    with pytest.raises(ValueError, match="'act'='c' is not one of"):
        space.check({"lr": 1e-3, "depth": 2, "act": "c"})
    with pytest.raises(ValueError, match=r"missing parameter\(s\) \['act'\]"):
        space.check({"lr": 1e-3, "depth": 2})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['zz'\]"):
        space.check({"lr": 1e-3, "depth": 2, "act": "a", "zz": 1})
    assert space.check({"lr": 1e-3, "depth": np.int64(2), "act": "a"}) == {
        "lr": 1e-3,
        "depth": 2,
        "act": "a",
    }


# -- the unit cube ----------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def float_and_value(draw):
    low = draw(finite)
    high = draw(st.floats(low + max(1e-3, abs(low) * 1e-6), low + 1e6))
    log = draw(st.booleans()) and low > 0
    dist = Float(low, high, log=log)
    return dist, draw(st.floats(low, high))


CI_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@CI_SETTINGS
@given(float_and_value())
def test_float_round_trip_to_the_last_bits(case):
    dist, x = case
    u = dist.encode(x)
    assert 0.0 <= u <= 1.0 + 1e-12
    assert math.isclose(dist.decode(u), x, rel_tol=1e-12, abs_tol=1e-9 * (dist.high - dist.low))


@st.composite
def discrete_and_value(draw):
    kind = draw(st.sampled_from(["int", "int-log", "int-step", "float-step", "cat"]))
    if kind == "cat":
        choices = draw(
            st.lists(
                st.one_of(
                    st.sampled_from(["", "a", "relu", "1"]),
                    st.integers(-(2**63), 2**63 - 1),  # what a choice may be: 64 bits
                    st.booleans(),
                    st.none(),
                ),
                min_size=1,
                max_size=6,
                unique_by=lambda v: (type(v), v),
            )
        )
        dist = Categorical(choices)
        return dist, draw(st.sampled_from(choices))
    low = draw(st.integers(1 if kind == "int-log" else -1000, 1000))
    if kind == "float-step":
        step = draw(st.sampled_from([0.5, 0.25, 0.1, 2.0]))
        n = draw(st.integers(1, 50))
        dist = Float(float(low), low + step * n, step=step)
        return dist, dist.grid(n + 1)[draw(st.integers(0, n))]
    step = draw(st.integers(1, 7)) if kind == "int-step" else 1
    n = draw(st.integers(1, 10**6 if step == 1 else 50))
    dist = Int(low, low + step * n, log=kind == "int-log", step=step)
    return dist, low + step * draw(st.integers(0, n))


@CI_SETTINGS
@given(discrete_and_value())
def test_discrete_round_trip_is_exact(case):
    dist, x = case
    u = dist.encode(x)
    assert 0.0 < u < 1.0
    y = dist.decode(u)
    assert y == x and type(y) is type(x)


@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_decode_gives_valid_params_and_is_stable(u):
    space = Space(
        a=Int(1, 100, log=True), b=Float(0.0, 2.0, step=0.5), c=Categorical(["x", "y", "z"])
    )
    params = space.decode(np.array(u))
    assert space.check(params) == params
    assert space.decode(space.encode(params)) == params


def test_uniform_cube_draws_are_uniform_over_values():
    space = Space(k=Int(0, 3), c=Categorical(["a", "b"]))
    draws = space.sample(np.random.default_rng(0), 8000)
    counts = np.bincount([d["k"] for d in draws], minlength=4)
    assert np.all(np.abs(counts / 8000 - 0.25) < 0.03)
    assert abs(sum(d["c"] == "a" for d in draws) / 8000 - 0.5) < 0.03


def test_spec_round_trip():
    space = Space(
        lr=Float(1e-4, 1e-1, log=True),
        q=Float(0, 1, step=0.5),
        n=Int(2, 10, step=2),
        act=Categorical(["relu", None, 3]),
    )
    again = Space.from_spec(space.to_spec())
    assert again == space and again.names == space.names
    assert repr(space).startswith("Space(lr=Float(")
    with pytest.raises(ValueError, match="unknown distribution type"):
        Distribution.from_spec({"type": "nope"})
