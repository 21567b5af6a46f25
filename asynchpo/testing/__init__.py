"""Contract test suites that every sampler, scheduler and storage runs (pytest needed)."""

from __future__ import annotations

from asynchpo.testing._samplers import MIXED, SamplerContract
from asynchpo.testing._schedulers import SchedulerContract
from asynchpo.testing._storages import StorageContract

__all__ = ["MIXED", "SamplerContract", "SchedulerContract", "StorageContract"]
