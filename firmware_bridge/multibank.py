"""One LockBank over several buses: routes each channel to the bank of its bus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from firmware_bridge.bank import (
    BoardInfo,
    ChannelRef,
    CommissioningBank,
    DoorState,
    FoundBoard,
    HasCommissioning,
    LockBank,
    Presence,
    ScanningBank,
    Units,
    UnknownChannel,
    last_presence,
)


class MultiBank:
    def __init__(self, banks: Mapping[str, LockBank]) -> None:
        self.banks = dict(banks)

    async def start(self) -> None:
        for bank in self.banks.values():
            await bank.start()

    async def close(self) -> None:
        errors: list[Exception] = []
        for bank in self.banks.values():
            try:
                await bank.close()
            except Exception as exc:  # close every bus even if one fails
                errors.append(exc)
        if errors:
            raise errors[0]

    async def unlock(self, ref: ChannelRef) -> None:
        bank = self.banks.get(ref.bus)
        if bank is None:
            raise UnknownChannel(f"no bus named {ref.bus!r}")
        await bank.unlock(ref)

    async def read_doors(self, units: Units | None = None) -> dict[ChannelRef, DoorState]:
        states: dict[ChannelRef, DoorState] = {}
        buses = None if units is None else {bus for bus, _ in units}
        for name, bank in self.banks.items():
            if buses is None or name in buses:
                states.update(await bank.read_doors(units))
        return states

    def presence(self) -> Presence:
        found: Presence = {}
        for bank in self.banks.values():
            found.update(last_presence(bank))
        return found

    def _commissioning(self, bus: str) -> CommissioningBank:
        bank = self.banks.get(bus)
        if bank is None:
            raise UnknownChannel(f"no bus named {bus!r}")
        if isinstance(bank, HasCommissioning):
            return bank.commissioning()
        if not isinstance(bank, CommissioningBank) and isinstance(bank, ScanningBank):
            raise UnknownChannel(
                f"bus {bus!r} cannot be mapped: its channels are not opened one by one here",
                fix="write its [[locker]] entries by hand from `kiosk hardware scan`",
            )
        if not isinstance(bank, CommissioningBank):
            raise UnknownChannel(
                f"bus {bus!r} cannot be scanned or mapped: its channels are its configured pins",
                fix="describe a GPIO bank's channels in the config by hand",
            )
        return bank

    async def scan(self, bus: str, units: Sequence[int], timeout_s: float) -> list[FoundBoard]:
        bank = self.banks.get(bus)
        if isinstance(bank, ScanningBank) and not isinstance(bank, HasCommissioning):
            return await bank.scan(bus, units, timeout_s)  # a bank that scans but does not map
        return await self._commissioning(bus).scan(bus, units, timeout_s)

    async def commission_open(self, ref: ChannelRef, profile: str) -> int:
        return await self._commissioning(ref.bus).commission_open(ref, profile)

    async def commission_door(self, ref: ChannelRef, profile: str) -> DoorState:
        return await self._commissioning(ref.bus).commission_door(ref, profile)

    def describe(self) -> list[BoardInfo]:
        return [info for bank in self.banks.values() for info in bank.describe()]
