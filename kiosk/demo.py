"""`kiosk demo`: a whole bank on simulated GPIO pins with sample parcels, no network needed."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import TextIO

from gpiozero.pins.mock import MockFactory

from firmware_bridge.gpio_sim import GpioDoorSim
from kiosk.clock import SystemClock
from kiosk.config.loader import parse_config
from kiosk.config.model import KioskConfig
from kiosk.domain.codes import new_code_key_text
from kiosk.domain.errors import KioskError
from kiosk.domain.sizes import Size
from kiosk.service.locker_service import LockerService
from kiosk.service.results import AnnouncedParcel
from kiosk.wiring import build_lock_bank, build_service

SAMPLE_SIZES = (Size.S, Size.M, Size.L)


def demo_config(state_dir: Path) -> KioskConfig:
    """The embedded default config, with its relative paths inside `state_dir`."""
    text = resources.files("kiosk").joinpath("demo.toml").read_text(encoding="utf-8")
    config = parse_config(tomllib.loads(text), state_dir / "demo.toml")
    key_file = Path(config.keys.site_code_key_file)
    if not key_file.exists():
        key_file.write_text(new_code_key_text(), encoding="ascii")
        key_file.chmod(0o600)
    return config


class DemoBank:
    """The bank of the demo: service, GPIO pins on MockFactory and door physics."""

    def __init__(self, state_dir: Path, auto_close_s: float = 0.0) -> None:
        self.state_dir = state_dir
        self.config = demo_config(state_dir)
        self.factory = MockFactory()
        bus = self.config.buses[0]
        pins = {
            lk.label: (bus.relay_pins[lk.channel], bus.sensor_pins[lk.channel])
            for lk in self.config.lockers
        }
        self.doors = GpioDoorSim(self.factory, pins, auto_close_s=auto_close_s)
        self.bank = build_lock_bank(self.config, pin_factory=self.factory)
        self.service: LockerService = build_service(self.config, self.bank, SystemClock())

    async def __aenter__(self) -> DemoBank:
        await self.bank.start()  # claims the pins: the pull-ups read every door open ...
        self.doors.start()  # ... until the simulated doors shut them
        await self.service.start()  # (bank.start() again is a no-op) reads doors, recovers
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.doors.stop()
        await self.bank.close()
        self.service.ctx.ledger.close()
        self.factory.reset()

    def announce_samples(self, out: TextIO) -> list[AnnouncedParcel]:
        parcels = [self.service.announce(size) for size in SAMPLE_SIZES]
        lines = [
            f"{p.parcel_id} delivery={p.delivery_code} pickup={p.pickup_code}" for p in parcels
        ]
        (self.state_dir / "demo-codes.txt").write_text("\n".join(lines) + "\n", encoding="ascii")
        print("Sample parcels (also in demo-codes.txt):", file=out)
        for p in parcels:
            print(
                f"  {p.parcel_id}  size {p.size}  delivery code {p.delivery_code}"
                f"  pickup code {p.pickup_code}",
                file=out,
            )
        return parcels

    def locker_line(self, label: str, parcel_id: str | None = None) -> str:
        ledger = self.service.ctx.ledger
        locker = ledger.locker(label)
        wanted = parcel_id or locker.parcel_id
        parcel = ledger.parcel(wanted) if wanted else None
        text = f"locker {label}: {locker.status.value}"
        if parcel:
            text += f", parcel {parcel.parcel_id}: {parcel.status.value}"
        return text

    async def wait_closed(self) -> list[str]:
        for _ in range(200):
            outcomes = await self.service.poll_doors()
            if outcomes:
                return [o.result for o in outcomes]
            await asyncio.sleep(0.02)
        raise RuntimeError("the door did not close")


async def headless(state_dir: Path, out: TextIO) -> int:
    """Walk one delivery and one pickup, printing each step; exit 0 when all held."""
    async with DemoBank(state_dir) as demo:
        print(f"locker-kiosk demo: bank {demo.config.site.id}, state in {state_dir}", file=out)
        parcels = demo.announce_samples(out)
        first = parcels[0]
        svc = demo.service
        print(f"\n1. A courier types delivery code {first.delivery_code}", file=out)
        opened = await svc.submit_code(first.delivery_code)
        door = "open" if demo.doors.is_open(opened.locker) else "shut"
        print(
            f"   locker {opened.locker} unlocked, door {door}; {demo.locker_line(opened.locker)}",
            file=out,
        )
        print("2. The courier puts the parcel in and shuts the door", file=out)
        demo.doors.close(opened.locker)
        await demo.wait_closed()
        print(f"   {demo.locker_line(opened.locker)}", file=out)
        print(f"3. The customer types pickup code {first.pickup_code}", file=out)
        again = await svc.submit_code(first.pickup_code)
        print(f"   locker {again.locker} unlocked, door open", file=out)
        print("4. The customer takes the parcel and shuts the door", file=out)
        demo.doors.close(again.locker)
        await demo.wait_closed()
        print(f"   {demo.locker_line(again.locker, first.parcel_id)}", file=out)
        verdict = svc.ctx.ledger.verify_audit()
        depth = svc.ctx.ledger.outbox_depth()
        print(
            f"\nAudit log: {verdict.rows} rows, chain {'verified' if verdict.ok else 'BROKEN'}."
            f" Outbox: {depth} events waiting for the cloud.",
            file=out,
        )
        return 0 if verdict.ok and again.locker == opened.locker else 1


async def interactive(state_dir: Path, out: TextIO, source: TextIO) -> int:
    """Type codes at a prompt; doors open on the simulated bank and shut again after 3 s."""
    async with DemoBank(state_dir, auto_close_s=3.0) as demo:
        print(f"locker-kiosk demo: bank {demo.config.site.id}, state in {state_dir}", file=out)
        demo.announce_samples(out)
        print(
            "\nType a code and press Enter (q to quit). Doors shut themselves after 3 s.", file=out
        )
        poller = asyncio.get_running_loop().create_task(_report_closings(demo, out))
        try:
            loop = asyncio.get_running_loop()
            while True:
                print("code> ", end="", file=out, flush=True)
                line = await loop.run_in_executor(None, source.readline)
                if not line or line.strip().lower() in {"q", "quit", "exit"}:
                    return 0
                try:
                    result = await demo.service.submit_code(line.strip())
                except KioskError as exc:
                    print(f"   {exc.message} [{exc.code}]", file=out)
                    continue
                print(f"   Locker {result.locker} is open ({result.role}).", file=out)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller


async def _report_closings(demo: DemoBank, out: TextIO) -> None:
    while True:
        for outcome in await demo.service.poll_doors():
            print(
                f"\n   Door {outcome.locker} shut: {outcome.result}; "
                f"{demo.locker_line(outcome.locker)}\ncode> ",
                end="",
                file=out,
                flush=True,
            )
        await asyncio.sleep(0.05)


def run(state_dir: str | None, headless_mode: bool) -> int:
    directory = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    if headless_mode:
        return asyncio.run(headless(directory, sys.stdout))
    return asyncio.run(interactive(directory, sys.stdout, sys.stdin))
