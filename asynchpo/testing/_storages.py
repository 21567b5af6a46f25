"""The contract every storage must meet; subclass and define ``make``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from asynchpo.events import StudyCreated, TrialAsked, TrialCompleted, fold
from asynchpo.space import Float, Space
from asynchpo.storage import BaseStorage

SPACE = Space(x=Float(0.0, 1.0))


def _created(t: float = 0.0) -> StudyCreated:
    return StudyCreated(time=t, space=SPACE.to_spec(), objective="loss", direction="minimize")


class StorageContract:
    """Shared tests: order, isolation of studies, JSON only, and (if persistent) reopening."""

    #: Whether a second ``make`` on the same path sees what the first wrote.
    persistent = False

    def make(self, path: Path) -> BaseStorage:
        raise NotImplementedError

    def test_empty(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        assert storage.studies() == [] and storage.read("nope") == []
        assert not storage.exists("nope")

    def test_events_come_back_in_order(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        events = (
            [_created()]
            + [TrialAsked(time=float(i), number=i, params={"x": i / 10}) for i in range(5)]
            + [TrialCompleted(time=9.0, number=2, values={"loss": 0.5, "note": "ok"})]
        )
        for e in events:
            storage.append("s", e)
        assert storage.read("s") == events
        assert fold(storage.read("s")).best_number == 2

    def test_studies_are_separate(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        for name in ("b", "a", "c"):
            storage.append(name, _created())
        storage.append("a", TrialAsked(time=1.0, number=0, params={"x": 0.1}))
        assert storage.studies() == ["b", "a", "c"]
        assert len(storage.read("a")) == 2 and len(storage.read("b")) == 1
        assert storage.exists("c") and not storage.exists("d")

    def test_rejects_what_json_cannot_hold(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        storage.append("s", _created())
        with pytest.raises((ValueError, TypeError)):
            storage.append("s", TrialCompleted(time=1.0, number=0, values={"loss": math.nan}))
        with pytest.raises((ValueError, TypeError)):
            storage.append("s", TrialAsked(time=1.0, number=0, params={"x": object()}))
        assert storage.read("s") == [_created()]

    def test_reopen_keeps_everything(self, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("not a persistent storage")
        storage = self.make(tmp_path)
        storage.append("s", _created())
        storage.append("s", TrialAsked(time=1.0, number=0, params={"x": 0.25}))
        storage.close()
        again = self.make(tmp_path)
        again.append("s", TrialCompleted(time=2.0, number=0, values={"loss": 1.0}))
        assert [e.kind for e in again.read("s")] == [
            "study_created",
            "trial_asked",
            "trial_completed",
        ]
        again.close()
