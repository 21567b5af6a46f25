"""The contract every storage must meet; subclass and define ``make``."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from asynchpo.events import StudyCreated, TrialAsked, TrialCompleted, fold
from asynchpo.space import Float, Space
from asynchpo.storage import BaseStorage, JournalConflictError, Lease

SPACE = Space(x=Float(0.0, 1.0))


def _created(t: float = 0.0) -> StudyCreated:
    return StudyCreated(time=t, space=SPACE.to_spec(), objective="loss", direction="minimize")


def _lease(holder: str, expires: float) -> Lease:
    return Lease(holder, 1, "elsewhere", expires)


class StorageContract:
    """Shared tests: order, batches, conflicts, isolation of studies, JSON only, leases,
    folding side files in, and (if persistent) reopening."""

    #: Whether a second ``make`` on the same path sees what the first wrote.
    persistent = False

    def make(self, path: Path) -> BaseStorage:
        raise NotImplementedError

    def test_empty(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        assert storage.studies() == [] and storage.read("nope") == []
        assert storage.records("nope").end == 0
        assert not storage.exists("nope")

    def test_events_come_back_in_order(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        events = (
            [_created()]
            + [TrialAsked(time=float(i), number=i, params={"x": i / 10}) for i in range(5)]
            + [TrialCompleted(time=9.0, number=2, values={"loss": 0.5, "note": "ok"})]
        )
        storage.append("s", events[:1], 0)
        storage.append("s", events[1:], 1)
        assert storage.read("s") == events
        assert fold(storage.read("s")).best_number == 2
        tail = storage.records("s", 4)
        assert tail.events == events[4:] and tail.end == len(events)

    def test_a_writer_that_is_not_at_the_end_writes_nothing(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        storage.append("s", [_created()], 0)
        storage.append("s", [TrialAsked(time=1.0, number=0, params={"x": 0.1})], 1)
        late = [TrialAsked(time=1.0, number=0, params={"x": 0.2}), _created()]
        with pytest.raises(JournalConflictError):
            storage.append("s", late, 1)  # another writer took record 1
        assert len(storage.read("s")) == 2  # not even the first of the batch
        with pytest.raises(ValueError, match="gap"):
            storage.append("s", [TrialAsked(time=1.0, number=1, params={"x": 0.2})], 3)
        assert storage.records("s").end == 2

    def test_studies_are_separate(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        for name in ("b", "a", "c"):
            storage.append(name, [_created()], 0)
        storage.append("a", [TrialAsked(time=1.0, number=0, params={"x": 0.1})], 1)
        assert storage.studies() == ["b", "a", "c"]
        assert len(storage.read("a")) == 2 and len(storage.read("b")) == 1
        assert storage.exists("c") and not storage.exists("d")

    def test_rejects_what_json_cannot_hold(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        storage.append("s", [_created()], 0)
        with pytest.raises((ValueError, TypeError)):
            storage.append("s", [TrialCompleted(time=1.0, number=0, values={"loss": math.nan})], 1)
        with pytest.raises((ValueError, TypeError)):
            ok = TrialAsked(time=1.0, number=0, params={"x": 0.5})
            storage.append("s", [ok, TrialAsked(time=1.0, number=1, params={"x": object()})], 1)
        assert storage.read("s") == [_created()]

    def test_a_live_lease_keeps_others_out_until_released(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        later = time.time() + 60

        def alive(lease: Lease) -> bool:
            return lease.expires > time.time()

        assert storage.claim("s", _lease("a", later), alive) is None
        blocked = storage.claim("s", _lease("b", later), alive)
        assert blocked is not None and blocked.holder == "a"
        assert storage.claim("t", _lease("b", later), alive) is None  # another study
        assert storage.renew("s", "a", later + 1) and not storage.renew("s", "b", later)
        assert [lease.expires for lease in storage.leases("s")] == [later + 1]
        storage.release("s", "a")
        assert storage.claim("s", _lease("b", later), alive) is None

    def test_an_expired_lease_is_taken_over(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)

        def alive(lease: Lease) -> bool:
            return lease.expires > time.time()

        assert storage.claim("s", _lease("dead", time.time() - 1), alive) is None
        assert storage.claim("s", _lease("new", time.time() + 60), alive) is None

    def test_a_fresh_storage_is_written_and_folded_whole(self, tmp_path: Path) -> None:
        storage = self.make(tmp_path)
        assert storage.read_only is False
        events = [_created(), TrialAsked(time=1.0, number=0, params={"x": 0.5})]
        storage.append("s", events, 0)
        storage.checkpoint()  # folding its side files in keeps every record
        assert storage.read("s") == events
        storage.append("s", [TrialCompleted(time=2.0, number=0, values={"loss": 1.0})], 2)
        assert storage.records("s").end == 3

    def test_reopen_keeps_everything(self, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("not a persistent storage")
        storage = self.make(tmp_path)
        storage.append("s", [_created()], 0)
        storage.append("s", [TrialAsked(time=1.0, number=0, params={"x": 0.25})], 1)
        storage.claim("s", _lease("a", time.time() + 60), lambda lease: True)
        storage.close()
        again = self.make(tmp_path)
        again.append("s", [TrialCompleted(time=2.0, number=0, values={"loss": 1.0})], 2)
        assert [e.kind for e in again.read("s")] == [
            "study_created",
            "trial_asked",
            "trial_completed",
        ]
        assert [lease.holder for lease in again.leases("s")] == ["a"]
        again.close()
