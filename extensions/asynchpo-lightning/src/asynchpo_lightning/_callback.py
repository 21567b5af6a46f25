"""The callback: one ``asynchpo.report`` per validation epoch, a clean stop when the study's
scheduler prunes or pauses the trial, and Lightning checkpoints that a resumed trial goes on
from.

In an objective::

    import lightning.pytorch as pl
    import asynchpo as ah
    from asynchpo_lightning import AsynchpoCallback, fit

    def objective(params):
        model = MyModule(lr=params["lr"])
        trainer = pl.Trainer(max_epochs=27, callbacks=[AsynchpoCallback("val_loss")])
        fit(trainer, model, datamodule=MyData())   # raises ah.Pruned once pruned
        return trainer.callback_metrics["val_loss"]
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn

import asynchpo as ah

__all__ = ["AsynchpoCallback", "fit"]

#: What a Lightning checkpoint that training can resume from holds, at least.
_CHECKPOINT_KEYS = ("epoch", "global_step", "loops", "optimizer_states", "state_dict")


class AsynchpoCallback(pl.Callback):
    """Reports ``monitor`` to the running asynchpo trial at the end of every validation
    epoch of a fit, and stops the fit cleanly once the study's scheduler prunes or pauses it.

    Each validation epoch (the sanity check aside) makes one
    ``asynchpo.report(step, **{monitor: value}, epoch=epochs)``, where ``epochs`` is the
    number of epochs trained so far. Validated at the end of each epoch (Lightning's
    default), ``step`` is that number too (``trainer.current_epoch + 1``: the first report
    is at step 1, the last of a full fit at ``max_epochs``, so
    ``ASHA(max_resource=max_epochs)`` lines up). Validated more often
    (``val_check_interval`` below an epoch, every so many batches across epochs, or by
    time), ``step`` is the number of training batches so far and ``epoch`` a fraction
    (0.25, 0.5, ...): judge trials by it with ``ASHA(max_resource=max_epochs,
    resource="epoch")``. An epoch of unknown length (a stream) gives no ``epoch``. When the
    report raises :class:`asynchpo.Pruned` (or :class:`asynchpo.Paused`), the callback sets
    ``trainer.should_stop``, so that Lightning ends the fit the way ``EarlyStopping`` does
    (other callbacks and loggers finish normally), and keeps the exception in
    :attr:`stopped`; :meth:`check_pruned`, which :func:`fit` calls after the fit, raises it
    again, so that the study records the trial as pruned (or paused), not failed. Outside a
    trial, ``asynchpo.report`` does nothing and the fit runs to its end.

    Args:
        monitor: The metric to report, as logged with ``self.log`` (e.g. in
            ``validation_step``); read from ``trainer.callback_metrics``.
        checkpoint: Save a Lightning checkpoint (the module's ``state_dict``, every
            optimizer's and learning-rate scheduler's state, the epoch and the loops'
            progress) with ``asynchpo.checkpoint`` after each validation epoch, before its
            report: a paused trial, or one population based training copies, then goes on
            from it when run with :func:`fit`. Needs the study's ``checkpoint_dir``.

    Example:
        >>> from asynchpo_lightning import AsynchpoCallback
        >>> callback = AsynchpoCallback("val_loss", checkpoint=True)
        >>> callback.monitor, callback.checkpoint, callback.stopped
        ('val_loss', True, None)
    """

    def __init__(self, monitor: str = "val_loss", *, checkpoint: bool = False) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"AsynchpoCallback: monitor must be the name of a logged metric, got {monitor!r}"
            )
        if not isinstance(checkpoint, bool):
            raise TypeError(
                f"AsynchpoCallback: checkpoint must be True or False, got {checkpoint!r}"
            )
        self.monitor = monitor
        self.checkpoint = checkpoint
        #: The ``asynchpo.Pruned`` (or ``Paused``) that stopped the latest fit, else None.
        self.stopped: ah.Pruned | None = None
        self._resuming = False  # fit() hands the trial's checkpoint to Lightning
        # the optimizers' settings as configure_optimizers made them for this fit, and as
        # they were in the fit that saved the checkpoint this one starts from
        self._configured: list[list[dict[str, Any]]] = []
        self._restored: list[list[dict[str, Any]]] | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor)

    def state_dict(self) -> dict[str, Any]:
        return {"configured": self._configured} if self.checkpoint else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict.get("configured")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            raise ValueError(
                f"AsynchpoCallback: a trial trains in one process, got a trainer of "
                f"{trainer.world_size} processes (strategy {type(trainer.strategy).__name__}); "
                "give each trial one device and let the study run trials side by side"
            )
        self.stopped = None
        # before Lightning loads the optimizers' state from a checkpoint, if it does
        self._configured = [
            [copy.deepcopy({k: v for k, v in g.items() if k != "params"}) for g in o.param_groups]
            for o in trainer.optimizers
        ]
        if self.checkpoint and not self._resuming and ah.restore() is not None:
            raise RuntimeError(
                "AsynchpoCallback(checkpoint=True): this trial resumes from a checkpoint, "
                "which trainer.fit(...) would ignore and train again from the start; run it "
                "with asynchpo_lightning.fit(trainer, model, ...), which goes on from it"
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A checkpoint of another trial (population based training's copy): its optimizer
        # state came back with the parent's settings (learning rate...); the ones this
        # trial's configure_optimizers set differently are its own, and win. A trial
        # resuming its own checkpoint has the same settings: nothing changes.
        restored, self._restored = self._restored, None
        if restored is None or len(restored) != len(self._configured):
            return
        for optimizer, then, now in zip(
            trainer.optimizers, restored, self._configured, strict=True
        ):
            if len(then) != len(now) or len(optimizer.param_groups) != len(now):
                continue
            for group, old, new in zip(optimizer.param_groups, then, now, strict=True):
                for key, value in new.items():
                    if key in old and not _same(old[key], value):
                        group[key] = copy.deepcopy(value)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        if self.stopped is not None:  # stopping already (min_epochs may hold Lightning back)
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise ValueError(
                f"AsynchpoCallback(monitor={self.monitor!r}): the metric {self.monitor!r} was "
                f"not logged; the metrics logged are {sorted(metrics)}. Log it with "
                f"self.log({self.monitor!r}, ...) in validation_step, or pass another monitor"
            )
        value = float(metrics[self.monitor])
        if self.checkpoint:
            ah.checkpoint(_lightning_checkpoint(trainer))
        step, epochs = _progress(trainer)
        report = {self.monitor: value}
        if epochs is not None:
            report.setdefault("epoch", epochs)  # a monitor named "epoch" is itself
        try:
            ah.report(step, **report)
        except ah.Pruned as stop:  # Paused too
            self.stopped = stop
            trainer.should_stop = True

    def check_pruned(self) -> None:
        """Raise the ``asynchpo.Pruned`` (or ``asynchpo.Paused``) that stopped the latest
        fit, if one did: call it right after ``trainer.fit(...)`` (:func:`fit` does)."""
        if self.stopped is not None:
            raise self.stopped


def _progress(trainer: pl.Trainer) -> tuple[int, float | None]:
    """The step of a validation's report, and the epochs trained (None when an epoch's
    length is unknown): the epoch number when validation comes at the ends of epochs
    (Lightning's default, every ``check_val_every_n_epoch``); the training batches of the
    fit when it comes every so many batches or seconds."""
    done = trainer.fit_loop.epoch_loop.batch_progress
    per_epoch = trainer.num_training_batches
    every = trainer.val_check_batch  # batches between validations (None: by time)
    at_ends = (
        trainer.check_val_every_n_epoch is not None
        and every is not None
        and (math.isinf(every) or every >= per_epoch)
    )
    if at_ends:
        return trainer.current_epoch + 1, float(trainer.current_epoch + 1)
    known = not math.isinf(per_epoch) and per_epoch > 0
    epochs = trainer.current_epoch + done.current.completed / per_epoch if known else None
    return int(done.total.completed), epochs


def _same(a: Any, b: Any) -> bool:
    """Whether two optimizer settings are equal (settings that cannot say are taken as equal)."""
    try:
        return bool(a == b)
    except Exception:  # e.g. tensors of several values
        return True


def _lightning_checkpoint(trainer: pl.Trainer) -> dict[str, Any]:
    """The checkpoint ``trainer.save_checkpoint`` writes, as a dict of CPU tensors."""
    with tempfile.TemporaryDirectory(prefix="asynchpo-lightning-") as folder:
        path = os.path.join(folder, "trial.ckpt")
        trainer.save_checkpoint(path, weights_only=False)  # all of it, said (not logged)
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def _callback(trainer: pl.Trainer) -> AsynchpoCallback:
    callbacks: list[pl.Callback] = getattr(trainer, "callbacks", [])  # set at run time
    found = [c for c in callbacks if isinstance(c, AsynchpoCallback)]
    if len(found) != 1:
        raise ValueError(
            f"fit: the trainer has {len(found)} AsynchpoCallback, not one; make it with "
            "pl.Trainer(..., callbacks=[AsynchpoCallback('val_loss')])"
        )
    return found[0]


def fit(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: pl.LightningDataModule | None = None,
    ckpt_path: str | Path | None = None,
) -> None:
    """``trainer.fit(...)`` inside an asynchpo trial: goes on from the trial's checkpoint
    when it has one, and raises ``asynchpo.Pruned`` (or ``asynchpo.Paused``) after the fit
    when the study's scheduler stopped it.

    The trainer must have one :class:`AsynchpoCallback`. With ``checkpoint=True``, a trial
    that resumes (after a pause or a lost worker), or that population based training started
    from another trial's checkpoint, is fitted from that checkpoint
    (``trainer.fit(ckpt_path=...)``): weights, optimizers, schedulers and the epoch count
    come back, and training goes on at the next epoch. ``ckpt_path`` is used only when the
    trial has no checkpoint of its own to go on from.

    Raises:
        asynchpo.Pruned: The study's scheduler stopped the trial (``asynchpo.Paused``: it
            paused it); the fit itself ended cleanly.
        ValueError: The trainer has no ``AsynchpoCallback``, or more than one.
        TypeError: The trial's checkpoint is not one ``AsynchpoCallback`` wrote.
    """
    callback = _callback(trainer)
    state = ah.restore() if callback.checkpoint else None
    if state is None:
        trainer.fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path=ckpt_path)
    else:
        if not isinstance(state, dict) or not all(k in state for k in _CHECKPOINT_KEYS):
            got = (
                f"a dict without {[k for k in _CHECKPOINT_KEYS if k not in state]}"
                if isinstance(state, dict)
                else type(state).__name__
            )
            raise TypeError(
                "fit: the trial's checkpoint is not a Lightning checkpoint (one that "
                f"AsynchpoCallback(checkpoint=True) saves): got {got}"
            )
        # asynchpo has checked the checkpoint's bytes are the ones this user's trials wrote
        trusted: dict[str, Any] = (
            {"weights_only": False}
            if "weights_only" in inspect.signature(trainer.fit).parameters
            else {}
        )
        with tempfile.TemporaryDirectory(prefix="asynchpo-lightning-") as folder:
            path = os.path.join(folder, "resume.ckpt")
            torch.save(state, path)
            del state
            callback._resuming = True
            try:
                trainer.fit(
                    model, train_dataloaders, val_dataloaders, datamodule, ckpt_path=path, **trusted
                )
            finally:
                callback._resuming = False
    callback.check_pruned()
