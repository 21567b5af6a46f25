"""AsynchpoCallback and fit on a tiny real Lightning regression, on the CPU, in real studies
(trials in local threads)."""

from __future__ import annotations

import logging
import re
import warnings

import lightning.pytorch as pl
import pytest
import torch
from asynchpo_lightning import AsynchpoCallback, fit
from lightning.pytorch.trainer.states import TrainerStatus

import asynchpo as ah

# torch's pytree deprecates a class Lightning's data loading still builds, on every fit:
# theirs, not ours (the test below that looks at warnings says which it leaves out)
LEAF_SPEC = "`isinstance(treespec, LeafSpec)` is deprecated"
# and on a machine with Slurm, Lightning's Trainer says that srun is there and unused
SRUN = "The `srun` command is available on your system but is not used"
THEIRS = (LEAF_SPEC, SRUN)
pytestmark = pytest.mark.filterwarnings(f"ignore:{re.escape(LEAF_SPEC)}:FutureWarning")

EPOCHS = 9
SPACE = ah.Space(lr=ah.Float(1e-4, 0.3, log=True))

_g = torch.Generator().manual_seed(0)
X = torch.randn(256, 4, generator=_g)
Y = X @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(256, 1, generator=_g)


class Batches:
    """Fixed batches, always in the same order (an iterable, not a DataLoader, so Lightning
    has no worker count to warn about)."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size

    def __iter__(self):
        for i in range(0, len(self.x), self.size):
            yield self.x[i : i + self.size], self.y[i : i + self.size]

    def __len__(self):
        return -(-len(self.x) // self.size)


TRAIN, VAL = Batches(X[:192], Y[:192], 32), Batches(X[192:], Y[192:], 64)


class Regression(pl.LightningModule):
    """One linear layer, from zero weights (no random draw, so threads need no seed), trained
    by SGD with momentum (so an optimizer state that was not restored shows)."""

    def __init__(self, lr):
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(4, 1)
        torch.nn.init.zeros_(self.layer.weight)
        torch.nn.init.zeros_(self.layer.bias)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


class Curve(pl.Callback):
    """Every validation loss of a fit, in order."""

    def __init__(self):
        self.losses = []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.losses.append(float(trainer.callback_metrics["val_loss"]))


def make_trainer(*callbacks, epochs=EPOCHS, **options):
    return pl.Trainer(
        max_epochs=epochs,
        **options,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=list(callbacks),
    )


def fitted(*callbacks, lr=0.05, epochs=EPOCHS):
    """A fit outside any study, with ``callbacks``; its trainer."""
    trainer = make_trainer(*callbacks, epochs=epochs)
    fit(trainer, Regression(lr), TRAIN, VAL)
    return trainer


def training(checkpoint=False, seen=None, plain=False):
    """An objective that fits the regression with the callback; ``seen`` collects, by lr,
    how each fit ended."""

    def objective(params):
        callback = AsynchpoCallback("val_loss", checkpoint=checkpoint)
        trainer = make_trainer(callback)
        try:
            if plain:
                trainer.fit(Regression(params["lr"]), TRAIN, VAL)
                callback.check_pruned()
            else:
                fit(trainer, Regression(params["lr"]), TRAIN, VAL)
        finally:
            if seen is not None:
                seen[params["lr"]] = {
                    "status": trainer.state.status,
                    "should_stop": trainer.should_stop,
                    "epochs": trainer.current_epoch,
                    "stopped": callback.stopped,
                    "lr": [g["lr"] for o in trainer.optimizers for g in o.param_groups],
                }
        return trainer.callback_metrics["val_loss"]

    return objective


def test_outside_a_study_the_fit_runs_to_its_end():
    callback = AsynchpoCallback()
    trainer = fitted(callback, epochs=3)
    assert trainer.current_epoch == 3 and trainer.state.status == TrainerStatus.FINISHED
    assert callback.stopped is None and not trainer.should_stop
    assert float(trainer.callback_metrics["val_loss"]) < float((Y[192:] ** 2).mean())


def test_a_missing_monitor_names_it_and_the_metrics_logged():
    with pytest.raises(ValueError, match=r"monitor='val_acc'.*\['val_loss'\]"):
        fitted(AsynchpoCallback("val_acc"), epochs=1)
    study = ah.Study(SPACE, objective="val_loss")

    def objective(params):
        trainer = make_trainer(AsynchpoCallback("val_acc"), epochs=2)
        fit(trainer, Regression(params["lr"]), TRAIN, VAL)
        return 0.0

    study.optimize(objective, n_trials=1, progress=False)
    (trial,) = study.trials
    assert trial.state is ah.TrialState.FAILED and not trial.reports
    assert "the metric 'val_acc' was not logged" in trial.error


def test_the_arguments_and_the_trainer_are_checked():
    with pytest.raises(ValueError, match="monitor"):
        AsynchpoCallback("")
    with pytest.raises(TypeError, match="checkpoint"):
        AsynchpoCallback(checkpoint="yes")
    with pytest.raises(ValueError, match="0 AsynchpoCallback"):
        fit(make_trainer(epochs=1), Regression(0.1), TRAIN, VAL)
    two = make_trainer(AsynchpoCallback(), AsynchpoCallback("train_loss"), epochs=1)
    with pytest.raises(ValueError, match="2 AsynchpoCallback"):
        fit(two, Regression(0.1), TRAIN, VAL)
    callback = AsynchpoCallback()
    ddp = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(ValueError, match="a trial trains in one process, got a trainer of 2"):
        callback.on_fit_start(ddp, Regression(0.1))


@pytest.mark.parametrize(
    "scheduler",
    [
        lambda: ah.ASHA(max_resource=EPOCHS, reduction_factor=3),
        lambda: ah.MedianStopping(min_trials=2),
    ],
    ids=["asha", "median"],
)
@pytest.mark.parametrize("plain", [False, True], ids=["fit", "trainer.fit+check_pruned"])
def test_pruned_trials_stop_their_fit_cleanly_and_are_recorded_pruned(scheduler, plain):
    seen = {}
    study = ah.Study(
        SPACE, objective="val_loss", sampler=ah.RandomSampler(seed=0), scheduler=scheduler()
    )
    study.optimize(training(seen=seen, plain=plain), n_trials=9, max_concurrent=2, progress=False)
    assert not study.get_trials([ah.TrialState.FAILED])
    pruned = study.get_trials([ah.TrialState.PRUNED])
    complete = study.get_trials([ah.TrialState.COMPLETE])
    assert pruned and complete and len(pruned) + len(complete) == 9
    for t in complete:
        assert [r.step for r in t.reports] == list(range(1, EPOCHS + 1))
        assert t.value == pytest.approx(t.reports[-1].metrics["val_loss"])
    for t in pruned:
        steps = [r.step for r in t.reports]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) < EPOCHS
        fit_ = seen[t.params["lr"]]
        # Lightning ended the fit as for EarlyStopping, right after the report that stopped it
        assert fit_["status"] == TrainerStatus.FINISHED and fit_["should_stop"]
        assert fit_["epochs"] == steps[-1]
        assert type(fit_["stopped"]) is ah.Pruned and f"at step {steps[-1]}" in str(fit_["stopped"])


def test_several_validations_an_epoch_report_rising_steps_and_the_epochs_trained():
    def objective(params):
        trainer = make_trainer(AsynchpoCallback("val_loss"), val_check_interval=0.5)
        fit(trainer, Regression(params["lr"]), TRAIN, VAL)
        return trainer.callback_metrics["val_loss"]

    # by the epochs trained (fractional), ASHA's rungs lie where the trials were validated
    study = ah.Study(
        SPACE,
        objective="val_loss",
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.ASHA(max_resource=EPOCHS, resource="epoch", reduction_factor=3),
    )
    study.optimize(objective, n_trials=6, max_concurrent=2, progress=False)
    assert not study.get_trials([ah.TrialState.FAILED])
    assert study.get_trials([ah.TrialState.PRUNED])
    for t in study.trials:
        steps = [r.step for r in t.reports]
        epochs = [r.metrics["epoch"] for r in t.reports]
        # two validations an epoch: each report one step on (six batches an epoch), never
        # the same epoch number twice for a half-trained and a fully trained epoch
        assert steps == [3 * (i + 1) for i in range(len(steps))]
        assert epochs == pytest.approx([0.5 * (i + 1) for i in range(len(epochs))])
    complete = study.get_trials([ah.TrialState.COMPLETE])
    assert all(t.reports[-1].metrics["epoch"] == EPOCHS for t in complete)


def test_once_an_epoch_the_step_is_the_epoch():
    callback = AsynchpoCallback("val_loss")
    study = ah.Study(SPACE, objective="val_loss", sampler=ah.RandomSampler(seed=0))

    def objective(params):
        trainer = make_trainer(callback, epochs=3)
        fit(trainer, Regression(params["lr"]), TRAIN, VAL)
        return trainer.callback_metrics["val_loss"]

    study.optimize(objective, n_trials=1, progress=False)
    (t,) = study.trials
    assert [r.step for r in t.reports] == [1, 2, 3]
    assert [r.metrics["epoch"] for r in t.reports] == [1, 2, 3]


class Unsized:
    """The training batches as an iterable of unknown length (a stream)."""

    def __iter__(self):
        return iter(TRAIN)


@pytest.mark.parametrize(
    ("data", "options", "steps", "epochs"),
    [
        # once an epoch, of a stream of unknown length too: the step is the epoch
        (Unsized(), {}, [1, 2, 3], [1.0, 2.0, 3.0]),
        # every 9 batches across epochs of 6: by batches, at epochs 1.5 and 3
        (TRAIN, {"val_check_interval": 9, "check_val_every_n_epoch": None}, [9, 18], [1.5, 3.0]),
        # every other epoch
        (TRAIN, {"check_val_every_n_epoch": 2}, [2], [2.0]),
    ],
    ids=["stream", "batches-across-epochs", "every-other-epoch"],
)
def test_the_step_and_the_epochs_of_each_way_of_validating(data, options, steps, epochs):
    study = ah.Study(SPACE, objective="val_loss", sampler=ah.RandomSampler(seed=0))

    def objective(params):
        trainer = make_trainer(AsynchpoCallback("val_loss"), epochs=3, **options)
        fit(trainer, Regression(params["lr"]), data, VAL)
        return trainer.callback_metrics["val_loss"]

    study.optimize(objective, n_trials=1, progress=False)
    (t,) = study.trials
    assert t.state is ah.TrialState.COMPLETE
    assert [r.step for r in t.reports] == steps
    assert [r.metrics["epoch"] for r in t.reports] == pytest.approx(epochs)


def test_a_monitor_named_epoch_is_reported_as_itself():
    class EpochLoss(Regression):
        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("epoch", torch.nn.functional.mse_loss(self.layer(x), y))

    study = ah.Study(SPACE, objective="epoch", sampler=ah.RandomSampler(seed=0))

    def objective(params):
        trainer = make_trainer(AsynchpoCallback("epoch"), epochs=2)
        fit(trainer, EpochLoss(params["lr"]), TRAIN, VAL)
        return trainer.callback_metrics["epoch"]

    study.optimize(objective, n_trials=1, progress=False)
    (t,) = study.trials
    assert t.state is ah.TrialState.COMPLETE and [r.step for r in t.reports] == [1, 2]
    assert t.reports[-1].metrics["epoch"] == pytest.approx(t.value)


def _pausing_study(folder):
    """A study whose ASHA pauses trials at each rung and resumes the best from checkpoints."""
    return ah.Study(
        SPACE,
        objective="val_loss",
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.ASHA(max_resource=EPOCHS, reduction_factor=3, mode="promotion"),
        checkpoint_dir=folder,
    )


def test_a_paused_trial_goes_on_from_its_checkpoint_as_if_never_paused(tmp_path):
    seen = {}
    study = _pausing_study(tmp_path)
    logged = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logging.getLogger("lightning.pytorch").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study.optimize(
                training(checkpoint=True, seen=seen), n_trials=9, max_concurrent=2, progress=False
            )
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(handler)
    assert not study.get_trials([ah.TrialState.FAILED])
    assert study.get_trials([ah.TrialState.PAUSED])
    resumed = [t for t in study.trials if t.attempts > 1]
    assert resumed, "no trial was resumed"
    for t in study.trials:
        steps = [r.step for r in t.reports]
        assert steps == list(range(1, len(steps) + 1)), f"trial {t.number} trained again"
    done = [t for t in resumed if t.state is ah.TrialState.COMPLETE]
    assert done, "no resumed trial ran to its end"
    for t in done:
        # the weights and the momentum came back: the curve is the one of a fit never paused
        curve = Curve()
        fitted(curve, AsynchpoCallback(), lr=t.params["lr"])
        assert [r.metrics["val_loss"] for r in t.reports] == pytest.approx(curve.losses, rel=1e-4)
        assert seen[t.params["lr"]]["epochs"] == EPOCHS and seen[t.params["lr"]]["stopped"] is None
    for t in study.get_trials([ah.TrialState.PAUSED]):
        assert type(seen[t.params["lr"]]["stopped"]) is ah.Paused
    # nothing said for our own calls: only Lightning's deprecation of torch's, if any
    ours = [str(w.message) for w in caught if not any(t in str(w.message) for t in THEIRS)]
    assert ours == []
    assert not [m for m in logged if "weights_only" in m]


def test_a_resumed_trial_refuses_a_plain_trainer_fit_that_would_start_over(tmp_path):
    study = _pausing_study(tmp_path)
    study.optimize(
        training(checkpoint=True, plain=True), n_trials=6, max_concurrent=2, progress=False
    )
    failed = study.get_trials([ah.TrialState.FAILED])
    assert failed and all(t.attempts > 1 for t in failed)
    assert all("asynchpo_lightning.fit(trainer, model" in t.error for t in failed)
    for t in study.trials:
        steps = [r.step for r in t.reports]
        assert steps == list(range(1, len(steps) + 1))


def test_population_based_training_copies_go_on_from_their_parents_epoch_at_their_own_lr(
    tmp_path,
):
    seen = {}
    study = ah.Study(
        SPACE,
        objective="val_loss",
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.PBT(perturbation_interval=3, quantile=0.5, max_resource=EPOCHS, seed=0),
        checkpoint_dir=tmp_path,
    )
    study.optimize(
        training(checkpoint=True, seen=seen), n_trials=10, max_concurrent=2, progress=False
    )
    assert not study.get_trials([ah.TrialState.FAILED])
    trials = {t.number: t for t in study.trials}
    copies = [t for t in trials.values() if t.parent is not None and t.reports]
    assert copies, "no trial was copied"
    for child in copies:
        parent_steps = {r.step for r in trials[child.parent].reports}
        steps = [r.step for r in child.reports]
        assert steps[0] > 1 and steps[0] - 1 in parent_steps
        assert steps == list(range(steps[0], steps[0] + len(steps)))
        assert steps[-1] <= EPOCHS
        # the parent's optimizer state, momentum and all, but the copy's own learning rate
        assert child.params["lr"] != trials[child.parent].params["lr"]
        assert seen[child.params["lr"]]["lr"] == [child.params["lr"]]
