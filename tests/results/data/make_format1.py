"""Makes ``format1.nc`` and ``format1.json``: a small study exported in the layout of format 1
(parameters and metrics under their own names, curves on a dense trial x step grid), and
what its trials were, to test that ``from_xarray`` still reads that format.

Run it with an asynchpo whose ``to_xarray`` writes format 1, from this folder:
``python make_format1.py``.
"""

from __future__ import annotations

import json

import asynchpo as ah

SPACE = ah.Space(
    lr=ah.Float(1e-4, 1e-1, log=True),
    q=ah.Float(0, 1, step=0.25),
    depth=ah.Int(1, 6),
    act=ah.Categorical(["relu", "gelu"]),
    flag=ah.Categorical([True, False, None]),
    width=ah.Categorical([16, 32]),
)


def objective(p):
    if p["depth"] == 6:
        raise ValueError("too deep")
    for step in range(3):
        ah.report(step, loss=p["lr"] * (3 - step), acc=0.1 * step)
        if p["q"] == 1.0 and step == 1:
            raise ah.Pruned()
    return {"loss": p["lr"] + p["depth"], "tag": p["act"], "state": 0.5}


def main() -> None:
    study = ah.Study(SPACE, objective="loss", sampler=ah.RandomSampler(seed=4), name="old")
    study.optimize(objective, n_trials=12, progress=False)
    study.ask()  # one trial still running when saved
    ds = study.to_xarray()
    assert ds.attrs["asynchpo_format"] == 1
    ds.to_netcdf("format1.nc", engine="h5netcdf")
    trials = [
        {
            "number": t.number,
            "params": dict(t.params),
            "state": t.state.value,
            "values": dict(t.values),
            "reports": [[r.step, dict(r.metrics), r.time] for r in t.reports],
            "worker": t.worker,
            "attempts": t.attempts,
            "asked_at": t.asked_at,
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "failure": None if t.failure is None else t.failure.value,
        }
        for t in study.trials
    ]
    with open("format1.json", "w") as f:
        json.dump(trials, f, indent=1)


if __name__ == "__main__":
    main()
