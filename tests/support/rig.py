"""The service rig: a LockerService and ledger on a real lock backend, GPIO pins or a Modbus bus.

Two backends behind one `Bank`:

* "gpio": a GpioLockBank on gpiozero's MockFactory pins, doors moved by the
  product's GpioDoorSim (`build_bank`);
* "modbus": a SimulatedLockBank (the `simulated` bus kind): the real
  ModbusLockBank, pymodbus's RTU framing and a real pty, answered by a SimBus
  whose SimBoards carry the door physics (`build_modbus_bank`).

Tests move doors through `bank.doors` (support.doors.DoorPhysics) and never
ask which backend is behind it; `restart` stops a bank as a crash would and
starts a new one on the same ledger file and the same physical doors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gpiozero.pins.mock import MockFactory

from firmware_bridge.bank import LockBank
from firmware_bridge.gpio import GpioChannel, GpioLockBank
from firmware_bridge.modbus import BoardSpec
from firmware_bridge.simboard import SimBus
from firmware_bridge.simboard.bank import SimulatedLockBank
from kiosk.config.model import LockerConfig, PolicyConfig
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService
from support.clock import FakeClock
from support.doors import DoorPhysics, SimDoorPhysics
from support.physics import GpioDoorPhysics

#: label, size: a small bank with every size and a label that sorts naturally (A-10).
DEFAULT_LOCKERS = [
    ("A-1", "S"),
    ("A-2", "S"),
    ("A-10", "S"),
    ("B-1", "M"),
    ("B-2", "M"),
    ("C-1", "L"),
]

FAST_POLICY = PolicyConfig(door_open_timeout_s=0.25, unlock_retries=1)

BACKENDS = ("gpio", "modbus")
#: How often a waiting flow reads the door sensors (s).
POLL_S = 0.005
SITE = "test-site"
PULSE_MS, MAX_PULSE_MS = 60, 500

#: The modbus rig: one RTU bus of kiosk-v1 boards, CHANNELS_PER_BOARD lockers on each
#: (the default six span units 1 and 2, so a poll reads two boards).
SIM_BUS = "rs485"
CHANNELS_PER_BOARD = 4
#: A pulsed door springs open this long after the pulse starts (s); it stays open.
SIM_OPEN_DELAY_S = 0.01
#: Per-attempt reply timeout (s) and retries. A reply is awaited this long: far more than
#: any answer takes on a loaded machine, so a test that expects answers never sees a
#: timeout (and a retry, a bad frame) it did not make.
SIM_TIMEOUT_S, SIM_RETRIES = 1.0, 2
#: The tests that wait out a silence (a silent board, a dropped or late frame) carry
#: `@pytest.mark.bus_silence` and wait this long instead, so each silence costs little.
SIM_SILENCE_TIMEOUT_S = 0.25
#: Shorter than FAST_POLICY's door_open_timeout_s, so the service's own retry never
#: re-writes a coil whose pulse is still running.
SIM_PULSE_MS = 150


@dataclass
class Bank:
    service: LockerService
    ledger: Ledger
    clock: FakeClock
    doors: DoorPhysics
    lock_bank: LockBank
    key: bytes
    path: str
    backend: str = "gpio"
    factory: MockFactory | None = None  # gpio: the pins the physics and the bank share
    pulse_s: float = PULSE_MS / 1000  # how long an unlock keeps a lock energised
    recovered: int = 0  # door operations settled by the last start
    stopped: bool = False

    @property
    def gpio(self) -> GpioLockBank:
        """The GPIO lock bank, for tests that build a GPIO rig themselves (`build_bank`)."""
        assert isinstance(self.lock_bank, GpioLockBank), f"{self.backend} bank"
        return self.lock_bank

    @property
    def sim(self) -> SimBus:
        """The simulated Modbus line and its boards (modbus-only tests)."""
        assert isinstance(self.lock_bank, SimulatedLockBank), f"{self.backend} bank"
        return self.lock_bank.sim

    async def start(self, open_doors: Iterable[str] = ()) -> int:
        """Claim the hardware, shut the doors (then reopen `open_doors`), start the service.

        GPIO: claiming a sensor pin with its pull-up drives it high (reads
        open), so the physics shuts the doors only after the bank claimed them.
        """
        await self.lock_bank.start()
        self.doors.start()
        for label in open_doors:
            self.doors.open(label)
        self.recovered = await self.service.start()
        return self.recovered

    async def stop(self) -> None:
        """Release everything (idempotent); the ledger file and the physical doors remain."""
        if self.stopped:
            return
        self.stopped = True
        await self.doors.stop()
        await self.lock_bank.close()
        self.ledger.close()


def _configs(
    specs: Sequence[tuple[str, str]], place: Callable[[int], tuple[str, int, int]]
) -> tuple[LockerConfig, ...]:
    """LockerConfigs in `specs` order; `place(index)` gives (bus, unit, channel)."""
    return tuple(
        LockerConfig(label, Size(size), *place(index)) for index, (label, size) in enumerate(specs)
    )


def _service(
    path: str,
    lock_bank: LockBank,
    clock: FakeClock,
    key: bytes,
    configs: tuple[LockerConfig, ...],
    policy: PolicyConfig,
) -> tuple[Ledger, LockerService]:
    ledger = Ledger.open(path)
    service = LockerService.build(ledger, lock_bank, clock, key, configs, policy, SITE, POLL_S)
    if isinstance(clock, FakeClock):  # (a test may bring a product clock over a scripted one)
        service.ctx.sleep = clock.sleep  # door waits count fake seconds (support.clock)
    return ledger, service


def build_bank(
    path: str,
    factory: MockFactory,
    key: bytes,
    clock: FakeClock,
    lockers: list[tuple[str, str]] | None = None,
    policy: PolicyConfig = FAST_POLICY,
) -> Bank:
    """The GPIO rig: locker i on relay pin 2+i and sensor pin 14+i (not started)."""
    specs = lockers or DEFAULT_LOCKERS
    configs = _configs(specs, lambda i: ("gpio", 1, i))
    pins = {label: (2 + index, 14 + index) for index, (label, _) in enumerate(specs)}
    gpio = GpioLockBank(
        "gpio",
        [GpioChannel(i, pins[label][0], pins[label][1]) for i, (label, _) in enumerate(specs)],
        pulse_ms=PULSE_MS,
        max_pulse_ms=MAX_PULSE_MS,
        debounce_ms=0,
        pin_factory=factory,
    )
    ledger, service = _service(path, gpio, clock, key, configs, policy)
    doors = GpioDoorPhysics(factory, pins)
    return Bank(service, ledger, clock, doors, gpio, key, path, "gpio", factory, PULSE_MS / 1000)


def modbus_spot(index: int) -> tuple[int, int]:
    """(unit, channel) of the index-th locker on the simulated bus."""
    return 1 + index // CHANNELS_PER_BOARD, index % CHANNELS_PER_BOARD


def simulated_lock_bank(
    lockers: int,
    presence: bool = False,
    timeout_s: float = SIM_TIMEOUT_S,
    pulse_ms: int = SIM_PULSE_MS,
) -> SimulatedLockBank:
    """Boards for `lockers` channels on one simulated RTU bus; doors stay open until closed.

    `presence`: register-map v2 boards with a parcel-presence sensor per channel;
    `timeout_s`: SIM_SILENCE_TIMEOUT_S for a test that waits out a silence."""
    units = sorted({modbus_spot(i)[0] for i in range(lockers)})
    specs = [
        BoardSpec(
            SIM_BUS, unit, "kiosk-v1", CHANNELS_PER_BOARD, pulse_ms, max(pulse_ms, MAX_PULSE_MS)
        )
        for unit in units
    ]
    bank = SimulatedLockBank(
        SIM_BUS,
        specs,
        door_close_s=0,
        timeout_s=timeout_s,
        retries=SIM_RETRIES,
        presence=presence,
    )
    for board in bank.sim.boards.values():
        for door in board.doors:
            door.open_delay_s = SIM_OPEN_DELAY_S
    return bank


def build_modbus_bank(
    path: str,
    key: bytes,
    clock: FakeClock,
    lockers: list[tuple[str, str]] | None = None,
    policy: PolicyConfig = FAST_POLICY,
    lock_bank: SimulatedLockBank | None = None,
) -> Bank:
    """The Modbus rig (not started); `lock_bank` reuses a stopped one (its boards, its doors)."""
    specs = lockers or DEFAULT_LOCKERS
    configs = _configs(specs, lambda i: (SIM_BUS, *modbus_spot(i)))
    sim_bank = lock_bank or simulated_lock_bank(len(specs))
    ledger, service = _service(path, sim_bank, clock, key, configs, policy)
    where = {label: modbus_spot(i) for i, (label, _) in enumerate(specs)}
    doors = SimDoorPhysics(sim_bank.sim, where)
    pulse_s = sim_bank.specs[0].pulse_ms / 1000
    return Bank(service, ledger, clock, doors, sim_bank, key, path, "modbus", None, pulse_s)


async def restart(old: Bank) -> Bank:
    """Stop `old` as a crash would (door operations as they are) and start a new service.

    Same ledger file, key, clock, policy and physical doors: a door open
    before stays open, a jammed one stays jammed, pulse counts carry on.
    """
    # The lockers in their configured order (channels keeps it): the same spots again.
    specs = [
        (label, old.ledger.parcels.locker(label).size.value) for label in old.service.ctx.channels
    ]
    policy = old.service.ctx.policy
    open_doors = [label for label, _ in specs if old.doors.is_open(label)]
    await old.stop()
    if old.backend == "modbus":
        assert isinstance(old.lock_bank, SimulatedLockBank)
        rig = build_modbus_bank(old.path, old.key, old.clock, specs, policy, old.lock_bank)
        await rig.start()  # the boards kept their doors: nothing to reopen
        return rig
    assert old.factory is not None
    rig = build_bank(old.path, old.factory, old.key, old.clock, specs, policy)
    doors = rig.doors
    assert isinstance(doors, GpioDoorPhysics)
    doors.jammed |= set(old.doors.jammed)
    doors.pulses.update(old.doors.pulses)
    await rig.start(open_doors)
    return rig
