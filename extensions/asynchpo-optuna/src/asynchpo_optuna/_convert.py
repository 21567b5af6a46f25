"""A study converted both ways between an Optuna storage and an asynchpo journal: the
parameters, the objective's values, the states and the intermediate values."""

from __future__ import annotations

import os

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial

import asynchpo as ah
from asynchpo.events import Event, TrialCompleted, TrialFailed, TrialPruned, TrialReported
from asynchpo.space import Distribution
from asynchpo.storage import BaseStorage
from asynchpo_optuna._sampler import as_choice, distributions


def to_optuna(
    study: ah.Study, storage: str | optuna.storages.BaseStorage | None, study_name: str
) -> optuna.Study:
    """Copy ``study`` into a new Optuna study ``study_name`` in ``storage`` (an Optuna
    storage or its URL, such as ``"sqlite:///optuna.db"``; None: in memory).

    Complete, failed and pruned trials are copied with their parameters (the active ones),
    value and the objective's intermediate values by step; trials that had not ended (running,
    paused, interrupted) are left out, as Optuna would only show them running forever.
    """
    dists = distributions(study.space, by_index=False)
    direction = (
        optuna.study.StudyDirection.MAXIMIZE
        if study.direction == "maximize"
        else optuna.study.StudyDirection.MINIMIZE
    )
    target = optuna.create_study(storage=storage, study_name=study_name, direction=direction)
    states = {
        ah.TrialState.COMPLETE: OptunaState.COMPLETE,
        ah.TrialState.FAILED: OptunaState.FAIL,
        ah.TrialState.PRUNED: OptunaState.PRUNED,
    }
    trials = []
    for t in study.trials:
        if t.state not in states:
            continue
        params = {name: as_choice(study.space[name], v) for name, v in t.params.items()}
        steps = {
            r.step: float(r.metrics[study.objective])
            for r in t.reports
            if isinstance(r.metrics.get(study.objective), (int, float))
        }
        trials.append(
            create_trial(
                state=states[t.state],
                params=params,
                distributions={name: dists[name] for name in params},
                value=t.value if t.state is ah.TrialState.COMPLETE else None,
                intermediate_values=steps,
                user_attrs={"asynchpo_number": t.number},
            )
        )
    target.add_trials(trials)
    return target


def from_optuna(
    source: optuna.Study,
    storage: str | os.PathLike[str] | BaseStorage | None = None,
    name: str | None = None,
    *,
    space: ah.Space | None = None,
) -> ah.Study:
    """A new asynchpo study holding the finished trials of Optuna study ``source``.

    The space is read from the trials' distributions unless ``space`` is given (it must
    be, for a study whose trials do not all have the same parameters: Optuna's
    define-by-run branches are :class:`asynchpo.Space` conditions, which cannot be read off
    the trials). Complete, failed and pruned trials are copied, with the intermediate values
    as reports of the objective ``"value"``; running and waiting trials are left out.

    Raises:
        ValueError: a multi-objective study, a parameter missing from some trials and no
            ``space``, or trials that do not fit ``space``; the message names the trial
            and the parameter.
    """
    if len(source.directions) != 1:
        raise ValueError(
            f"source: study {source.study_name!r} has {len(source.directions)} objectives; "
            "only single-objective studies convert"
        )
    kept = (OptunaState.COMPLETE, OptunaState.FAIL, OptunaState.PRUNED)
    trials = [t for t in source.get_trials(deepcopy=False) if t.state in kept]
    if space is None:
        space = _space(trials)
    direction = (
        "maximize" if source.direction == optuna.study.StudyDirection.MAXIMIZE else ("minimize")
    )
    study = ah.Study(
        space,
        objective="value",
        direction=direction,
        storage=storage,
        name=name or source.study_name,
    )
    rows = []
    for t in trials:
        try:
            rows.append(space.check(t.params))
        except ValueError as exc:
            raise ValueError(f"source: trial {t.number}: {exc}") from None
    journal = study.journal

    def ends(numbers: list[int]) -> list[Event]:
        now, out = journal.now(), list[Event]()
        for number, t in zip(numbers, trials, strict=True):
            for seq, (step, v) in enumerate(sorted(t.intermediate_values.items())):
                out.append(
                    TrialReported(
                        time=now, number=number, step=int(step), metrics={"value": v}, seq=seq
                    )
                )
            if t.state == OptunaState.COMPLETE:
                out.append(TrialCompleted(time=now, number=number, values={"value": t.value}))
            elif t.state == OptunaState.PRUNED:
                out.append(TrialPruned(time=now, number=number, step=t.last_step))
            else:
                reason = str(t.system_attrs.get("fail_reason", "failed in Optuna"))
                out.append(TrialFailed(time=now, number=number, reason=reason))
        return out

    if rows:
        journal.ask(rows, run=None, after=ends)
    return study


def _space(trials: list[optuna.trial.FrozenTrial]) -> ah.Space:
    dists: dict[str, BaseDistribution] = {}
    for t in trials:
        for name, d in t.distributions.items():
            if name in dists and dists[name] != d:
                raise ValueError(
                    f"source: parameter {name!r} has two distributions ({dists[name]} and {d}"
                    f", trial {t.number}); give space="
                )
            dists[name] = d
    for t in trials:
        missing = sorted(set(dists) - set(t.params))
        if missing:
            raise ValueError(
                f"source: trial {t.number} has no parameter {missing[0]!r} (a define-by-run "
                "branch); give space= with the condition under which it is active"
            )
    return ah.Space({name: _distribution(name, d) for name, d in dists.items()})


def _distribution(name: str, d: BaseDistribution) -> Distribution:
    if isinstance(d, FloatDistribution):
        return ah.Float(d.low, d.high, log=d.log, step=d.step)
    if isinstance(d, IntDistribution):
        return ah.Int(d.low, d.high, log=d.log, step=d.step)
    if isinstance(d, CategoricalDistribution):
        return ah.Categorical(list(d.choices))
    raise ValueError(f"source: parameter {name!r}: {type(d).__name__} has no asynchpo equivalent")
