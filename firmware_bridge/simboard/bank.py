"""The `simulated` bus kind: a simulated board on a real pty, driven by the real Modbus backend.

Nothing is faked between the kiosk and the simulated board: requests go
through ModbusLockBank, pymodbus's RTU framing and a pseudo-terminal, and the
SimBus answers them with its door physics. `sim` is there for scripts and
tests (jam a door, force one open, shut one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from firmware_bridge.bank import (
    BoardInfo,
    BridgeError,
    ChannelRef,
    DoorState,
    FoundBoard,
    Presence,
    Units,
)
from firmware_bridge.modbus import BoardSpec, BusSettings, ModbusBus, ModbusLockBank
from firmware_bridge.modbus.bus import RequestObserver
from firmware_bridge.simboard.board import SimBoard
from firmware_bridge.simboard.bus import SimBus
from firmware_bridge.simboard.transports import PtyLink, serve_pty


class SimulatedLockBank:
    def __init__(
        self,
        bus: str,
        boards: Iterable[BoardSpec],
        door_close_s: float = 3.0,
        timeout_s: float = 0.3,
        retries: int = 2,
        baudrate: int = 115200,
        observer: RequestObserver | None = None,
        presence: bool = False,
    ) -> None:
        """`presence`: register-map v2 boards with a presence sensor per channel."""
        self.name = bus
        self.specs = list(boards)
        self.sim = SimBus()
        for spec in self.specs:
            self.sim.add(
                SimBoard(
                    spec.unit,
                    spec.channels,
                    spec.pulse_ms,
                    auto_close_s=door_close_s or None,
                    map_version=2 if presence else 1,
                    presence=presence,
                )
            )
        self._settings = (timeout_s, retries, baudrate)
        self._observer = observer
        self._link: PtyLink | None = None
        self._bank: ModbusLockBank | None = None

    @property
    def device(self) -> str | None:
        return self._link.path if self._link else None

    async def start(self) -> None:
        if self._bank is not None:
            return
        timeout_s, retries, baudrate = self._settings
        self._link = await serve_pty(self.sim, baudrate=baudrate)
        settings = BusSettings(
            self.name,
            "rtu",
            device=self._link.path,
            baudrate=baudrate,
            timeout_s=timeout_s,
            retries=retries,
        )
        bank = ModbusLockBank([ModbusBus(settings, observer=self._observer)], self.specs)
        try:
            await bank.start()
        except BaseException:
            await self._link.stop()
            self._link = None
            raise
        self._bank = bank

    async def close(self) -> None:
        if self._bank is not None:
            await self._bank.close()
            self._bank = None
        if self._link is not None:
            await self._link.stop()
            self._link = None

    def _require(self) -> ModbusLockBank:
        if self._bank is None:
            raise BridgeError(f"simulated bus {self.name!r} is not started", fix="call start()")
        return self._bank

    async def unlock(self, ref: ChannelRef) -> None:
        await self._require().unlock(ref)

    async def read_doors(self, units: Units | None = None) -> dict[ChannelRef, DoorState]:
        return await self._require().read_doors(units)

    def presence(self) -> Presence:
        return self._require().presence()

    async def scan(self, bus: str, units: Sequence[int], timeout_s: float) -> list[FoundBoard]:
        return await self._require().commissioning().scan(bus, units, timeout_s)

    async def commission_open(self, ref: ChannelRef, profile: str) -> int:
        return await self._require().commissioning().commission_open(ref, profile)

    async def commission_door(self, ref: ChannelRef, profile: str) -> DoorState:
        return await self._require().commissioning().commission_door(ref, profile)

    def describe(self) -> list[BoardInfo]:
        if self._bank is None:
            return [
                BoardInfo(self.name, s.unit, "simulated", s.channels, online=False)
                for s in self.specs
            ]
        return [
            BoardInfo(
                b.bus, b.unit, "simulated", b.channels, b.online, b.counters, b.presence_sensors
            )
            for b in self._bank.describe()
        ]
