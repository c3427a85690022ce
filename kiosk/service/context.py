"""What every use case needs: the ledger, the lock bank, a clock, the rules and the locker map."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from firmware_bridge.bank import ChannelRef, LockBank
from kiosk.clock import Clock
from kiosk.config.model import PolicyConfig
from kiosk.domain.layout import Cell
from kiosk.domain.limiter import LimiterPolicy
from kiosk.ledger.db import Ledger
from kiosk.service.observer import NoObserver, ServiceObserver


@dataclass
class ServiceContext:
    ledger: Ledger
    bank: LockBank
    clock: Clock
    code_key: bytes
    channels: Mapping[str, ChannelRef]  # locker label -> lock channel
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    site_id: str = "site"
    poll_s: float = 0.05  # how often a waiting flow reads the door sensors
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    observer: ServiceObserver = field(default_factory=NoObserver)
    layout: tuple[Cell, ...] = ()  # the bank's front, for the keypad's picture

    @property
    def limiter(self) -> LimiterPolicy:
        p = self.policy
        return LimiterPolicy(
            p.max_failures, p.backoff_first_s, p.backoff_max_s, p.daily_failure_budget
        )

    @property
    def hold(self) -> timedelta:
        return timedelta(minutes=self.policy.hold_minutes)

    @property
    def pickup_window(self) -> timedelta:
        return timedelta(days=self.policy.pickup_days)

    @property
    def expiring_window(self) -> timedelta:
        return timedelta(hours=self.policy.expiring_hours)

    @property
    def reminder_every(self) -> timedelta:
        return timedelta(hours=self.policy.reminder_hours)

    def channel(self, label: str) -> ChannelRef:
        return self.channels[label]
