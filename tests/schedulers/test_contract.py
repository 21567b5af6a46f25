"""Every scheduler the package ships passes the scheduler contract."""

from __future__ import annotations

import asynchpo as ah
from asynchpo.testing import SchedulerContract
from asynchpo.testing._schedulers import MAX_RESOURCE


class TestMedianStopping(SchedulerContract):
    def make(self) -> ah.MedianStopping:
        return ah.MedianStopping(grace=2)


class TestASHAStopping(SchedulerContract):
    def make(self) -> ah.ASHA:
        return ah.ASHA(MAX_RESOURCE)


class TestASHAPromotion(SchedulerContract):
    def make(self) -> ah.ASHA:
        return ah.ASHA(MAX_RESOURCE, mode="promotion")


class TestHyperband(SchedulerContract):
    def make(self) -> ah.Hyperband:
        return ah.Hyperband(MAX_RESOURCE, seed=1)


class TestHyperbandPromotion(SchedulerContract):
    def make(self) -> ah.Hyperband:
        return ah.Hyperband(MAX_RESOURCE, mode="promotion", reduction_factor=2)


class TestPBT(SchedulerContract):
    def make(self) -> ah.PBT:
        return ah.PBT(perturbation_interval=3, seed=2)
