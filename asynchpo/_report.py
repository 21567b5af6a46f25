"""What runs around the objective, on the worker: the trial context, ``report``, ``Pruned``.

:func:`run_trial` is the function every backend executes. It calls the objective, turns what
it returns into metrics (or a failure) right there, so a huge or odd return value never
travels back, and collects the intermediate reports it made.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import math
import numbers
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asynchpo._checks import is_integer, short
from asynchpo._limits import MAX_PARAMS, MAX_RECORD_BYTES, MAX_STRING

if TYPE_CHECKING:
    from asynchpo.execution._backend import Job

__all__ = [
    "Paused",
    "Pruned",
    "checkpoint",
    "interpret_result",
    "report",
    "restore",
    "run_trial",
]

#: Room kept in a record for what goes around a result's metrics (its kind, trial, time).
_ENVELOPE = 1024
#: Checkpoints an attempt keeps on disk: its latest two.
_KEEP_CHECKPOINTS = 2


class Pruned(Exception):  # noqa: N818 - the name users raise and catch
    """Stops a trial early; the trial is recorded as pruned.

    ``asynchpo.report`` raises it inside the objective once the study's scheduler decided
    to stop the trial; an objective may raise it itself too. Let it propagate (clean up in
    ``finally``)."""


class Paused(Pruned):
    """Raised by ``asynchpo.report`` once the study's scheduler paused the trial: the trial
    may be resumed later, from its latest ``asynchpo.checkpoint``."""


#: What a backend says about a running trial when asked after each report: nothing (go
#: on), ``"stop"`` or ``"pause"``.
Decide = Callable[[], str | None]


@dataclass
class TrialContext:
    """The trial an objective call belongs to, and where its reports go.

    ``first_seq`` numbers this attempt's first report (an attempt that resumes a paused
    trial goes on counting); ``decide`` tells, after each report, what the study's scheduler
    decided about the trial.
    """

    number: int
    attempt: int
    send: Callable[[dict[str, Any]], None] | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    first_seq: int = 0
    decide: Decide | None = None
    checkpoints: str | None = None  # the study's checkpoint folder
    restore: dict[str, str] | None = None  # the checkpoint this attempt starts from
    saved: dict[str, Any] | None = None  # its latest checkpoint, not yet sent with a report
    written: list[str] = field(default_factory=list)  # this attempt's checkpoints, oldest first


def context_for(
    job: Job, send: Callable[[dict[str, Any]], None] | None = None, decide: Decide | None = None
) -> TrialContext:
    """The context of one attempt (an ``asynchpo.execution.Job``) as a backend runs it."""
    return TrialContext(
        job.number,
        job.attempt,
        send,
        first_seq=job.first_seq,
        decide=decide,
        checkpoints=job.checkpoints,
        restore=job.restore,
    )


_current: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar(
    "asynchpo_trial", default=None
)


def _is_bool(value: Any) -> bool:
    """True for ``bool``, NumPy's ``bool_``, and 0-d arrays or tensors of booleans."""
    if isinstance(value, bool):
        return True
    return str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def _metric(name: str, value: Any) -> Any:
    """A JSON-ready metric value: a finite float (None for a non-finite one), a str of at
    most ``MAX_STRING`` characters, a bool, or None; else ``TypeError`` or ``ValueError``
    naming the metric."""
    if value is None:
        return None
    if _is_bool(value):
        if tuple(getattr(value, "shape", ())) != ():
            raise TypeError(f"metric {name!r} is an array of shape {tuple(value.shape)}")
        return bool(value)
    if isinstance(value, str):
        text = str.__str__(value)
        if len(text) > MAX_STRING:
            raise ValueError(
                f"metric {name!r} is a string of {len(text)} characters, over {MAX_STRING}"
            )
        return text
    if isinstance(value, (bytes, Mapping, list, tuple, set)):
        raise TypeError(
            f"metric {name!r} has type {type(value).__name__}; give a number, a string, a bool "
            "or None (not a container)"
        )
    if isinstance(value, numbers.Real) or hasattr(value, "__float__"):
        shape = tuple(getattr(value, "shape", ()))
        if shape:
            raise TypeError(
                f"metric {name!r} is an array of shape {shape}; give a number (e.g. its mean)"
            )
        try:
            x = float(value)
        except OverflowError:  # an int beyond the range of a float
            return None
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metric {name!r}: {short(value)} is not a number ({exc})") from None
        return x if math.isfinite(x) else None
    raise TypeError(
        f"metric {name!r} has type {type(value).__name__}; give a number, a string, a bool or None"
    )


def _metrics(metrics: Mapping[Any, Any]) -> dict[str, Any]:
    """Metrics as a record holds them, or ``TypeError``/``ValueError`` saying what is wrong:
    at most ``MAX_PARAMS`` of them, str names of at most ``MAX_STRING`` characters, values
    as :func:`_metric` takes them, all of it within a record's size."""
    if len(metrics) > MAX_PARAMS:
        raise ValueError(f"{len(metrics)} metrics, over {MAX_PARAMS}")
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if not isinstance(k, str):
            raise TypeError(f"metric names must be strings, got {short(k)}")
        if len(k) > MAX_STRING:
            raise ValueError(f"metric name {short(k)} has {len(k)} characters, over {MAX_STRING}")
        out[str.__str__(k)] = _metric(k, v)
    size = len(json.dumps(out, separators=(",", ":")))
    if size > MAX_RECORD_BYTES - _ENVELOPE:
        raise ValueError(
            f"the metrics take {size} bytes of JSON, more than the "
            f"{MAX_RECORD_BYTES - _ENVELOPE} a record holds for them"
        )
    return out


def report(step: int, **metrics: Any) -> None:
    """Send an intermediate result of the running trial to the study, as it happens.

    Call it from inside the objective (``step`` is the epoch or iteration, ``metrics`` the
    numbers at that step). The report reaches the driver at once through dask's messaging and
    is stored with the trial. Outside a trial (calling the objective by hand) it does nothing.

    Example:
        >>> import asynchpo as ah
        >>> def objective(params):
        ...     for epoch in range(3):
        ...         ah.report(epoch, loss=1.0 / (epoch + 1))
        ...     return 1.0 / 3
        >>> objective({})
        0.3333333333333333
    """
    ctx = _current.get()
    if ctx is None:
        return
    if not is_integer(step):
        raise TypeError(f"report: step must be an integer, got {short(step)}")
    if not -(2**63) <= step < 2**63:
        raise ValueError(f"report: step must be a 64-bit integer, got {short(step)}")
    if not metrics:
        raise ValueError("report: give at least one metric, e.g. report(step, loss=0.3)")
    try:
        checked = _metrics(metrics)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"report: {exc}") from None
    msg = {
        "number": ctx.number,
        "step": int(step),
        "metrics": checked,
        "seq": ctx.first_seq + len(ctx.reports),
        "time": time.time(),
    }
    if ctx.saved is not None:  # the checkpoint travels with the report that follows it
        msg["checkpoint"], ctx.saved = ctx.saved, None
    ctx.reports.append(msg)
    if ctx.send is not None:
        ctx.send(msg)
    decision = ctx.decide() if ctx.decide is not None else None
    if decision == "stop":
        raise Pruned(f"trial {ctx.number} was stopped by the study's scheduler at step {step}")
    if decision == "pause":
        raise Paused(f"trial {ctx.number} was paused by the study's scheduler at step {step}")


def checkpoint(obj: Any) -> None:
    """Save ``obj`` (anything picklable: model and optimizer state, the epoch) as the
    running trial's checkpoint, under the study's checkpoint folder.

    Call it before ``asynchpo.report`` at the points a trial could be paused or copied
    (each epoch): a trial the scheduler resumes later, or that population based training
    copies, starts from its latest checkpoint (:func:`restore`). Outside a trial it does
    nothing.
    """
    from asynchpo import _checkpoint

    ctx = _current.get()
    if ctx is None:
        return
    if ctx.checkpoints is None:
        raise RuntimeError("checkpoint: this study has no checkpoint folder")
    seq = ctx.first_seq + len(ctx.reports)
    saved = _checkpoint.save(obj, ctx.checkpoints, ctx.number, seq)
    ctx.saved = {**saved, "seq": seq}
    ctx.written.append(saved["name"])
    # the last two are kept: the newest may not have reached the journal when a worker dies
    while len(ctx.written) > _KEEP_CHECKPOINTS:
        _checkpoint.remove(ctx.checkpoints, ctx.written.pop(0))


def restore() -> Any:
    """The checkpoint the running trial starts from (its own latest, when it resumes after
    a pause or a lost worker; a better trial's, when population based training copies it),
    or None for a fresh start.

    Example:
        >>> import asynchpo as ah
        >>> def objective(params):
        ...     state = ah.restore() or {"epoch": 0, "loss": 1.0}
        ...     for epoch in range(state["epoch"] + 1, 4):
        ...         state = {"epoch": epoch, "loss": state["loss"] / 2}
        ...         ah.checkpoint(state)
        ...         ah.report(epoch, loss=state["loss"])
        ...     return state["loss"]
        >>> objective({})
        0.125

    Raises:
        asynchpo.CheckpointError: The checkpoint is missing or is not the file written.
    """
    from asynchpo import _checkpoint

    ctx = _current.get()
    if ctx is None or ctx.restore is None or ctx.checkpoints is None:
        return None
    return _checkpoint.load(ctx.checkpoints, ctx.restore["name"], ctx.restore["sha256"])


def interpret_result(result: Any, objective: str) -> tuple[dict[str, Any] | None, str | None]:
    """Metrics from what an objective returned, or why it is not a valid result.

    A number is the objective's value; a mapping holds metrics, ``objective`` among them. The
    objective's value must be a finite number (a bool, of any kind, is not one); other
    metrics may be numbers (non-finite ones are stored as None), strings, bools or None,
    within the limits of ``asynchpo._limits`` (``MAX_PARAMS`` metrics, names and strings of
    ``MAX_STRING`` characters, one record's size).

    Returns:
        ``(values, None)`` for a valid result, ``(None, reason)`` otherwise.
    """
    if isinstance(result, Mapping):
        if objective not in result:
            keys = [short(k, 40) for k in itertools.islice(result, 10)]
            return None, f"the objective returned a dict without {objective!r} (keys: {keys})"
        raw = result[objective]
        try:
            values = _metrics(result)
        except (TypeError, ValueError) as exc:
            return None, str(exc)
    else:
        raw, values = result, {}
    if _is_bool(raw):
        return None, (
            f"the objective returned bool ({short(raw)}) for {objective!r}; "
            "return a number or a dict of metrics"
        )
    if (
        isinstance(raw, (str, bytes))
        or raw is None
        or not (isinstance(raw, numbers.Real) or hasattr(raw, "__float__"))
    ):
        return None, (
            f"the objective returned {type(raw).__name__} for {objective!r}; "
            f"return a number or a dict of metrics"
        )
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        return None, f"the objective's value {short(raw)} is not a number ({exc})"
    if not math.isfinite(value):
        return None, f"the objective returned {value} for {objective!r}"
    values[objective] = value
    return values, None


def run_trial(
    objective: Callable[[dict[str, Any]], Any],
    params: dict[str, Any],
    objective_name: str,
    ctx: TrialContext,
) -> dict[str, Any]:
    """Run one attempt of a trial and describe how it ended, as a plain dict.

    Returns:
        ``{"status": "ok" | "invalid" | "error" | "pruned" | "paused", "values", "error", "step",
        "reports", "start", "end"}``; nothing the objective raises escapes.
    """
    token = _current.set(ctx)
    start = time.time()
    out: dict[str, Any] = {"values": None, "error": None, "step": None}
    try:
        result = objective(dict(params))
    except Pruned as stop:
        out["status"] = "paused" if isinstance(stop, Paused) else "pruned"
        out["step"] = ctx.reports[-1]["step"] if ctx.reports else None
    except BaseException as exc:  # the objective's failure is data, not the driver's crash
        # (KeyboardInterrupt and SystemExit raised by the objective too: they end the
        # trial, never the worker or the driver)
        out["status"] = "error"
        out["error"] = "".join(traceback.format_exception(exc)).rstrip()
    else:
        try:
            values, why = interpret_result(result, objective_name)
        except Exception as exc:  # a result whose own methods raise
            values, why = None, f"the objective's result could not be read: {exc!r}"
        out["status"] = "ok" if values is not None else "invalid"
        out["values"], out["error"] = values, why
    finally:
        _current.reset(token)
    out.update(reports=ctx.reports, start=start, end=time.time(), checkpoint=ctx.saved)
    return out
