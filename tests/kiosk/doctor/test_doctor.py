"""`kiosk doctor` as a real process: a simulated board on a pty, a real ledger, a real broker.

With the daemon stopped, doctor probes the bus itself, read-only (the
simulated board's frame log shows it never wrote); with the daemon running,
it asks the daemon, which owns the bus.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.broker import Broker
from support.daemon_proc import DaemonProcess, kiosk, newer_ledger, short_dir, write_config

from kiosk.doctor import local
from kiosk.ledger.db import Ledger

WRITE_FUNCTIONS = {5, 6, 15, 16}


class SimBoard:
    """`kiosk simulate board --pty -v` in its own process; every frame it sees goes to a file."""

    def __init__(self, where: Path, units: int = 1, channels: int = 4) -> None:
        self.frames = where / "frames.log"
        self._frames_out = self.frames.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "firmware_bridge.simboard",
                "--pty",
                "-v",
                "--units",
                str(units),
                "--channels",
                str(channels),
            ],
            stdout=subprocess.PIPE,
            stderr=self._frames_out,
            text=True,
        )
        assert self.proc.stdout is not None
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), f"no pty printed: {self.frames.read_text()}"

    def function_codes(self) -> set[int]:
        return {int(m) for m in re.findall(r"fc=(\d+)", self.frames.read_text())}

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._frames_out.close()


@pytest.fixture
def board(tmp_path) -> Iterator[SimBoard]:
    sim = SimBoard(tmp_path)
    yield sim
    sim.close()


def bank_config(
    state: Path,
    port: str,
    boards: tuple[tuple[int, int], ...] = ((1, 4),),
    key_mode: int = 0o600,
    ledger: bool = True,
    mqtt: str = "",
) -> Path:
    """A modbus-rtu bank on `port`: (unit, channels) boards, a locker on each channel."""
    key = state / "site-code.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    key.chmod(key_mode)
    lines = [
        '[site]\nid = "doc-01"',
        f"[ledger]\npath = {json.dumps(str(state / 'ledger.db'))}",
        f"[keys]\nsite_code_key_file = {json.dumps(str(key))}",
        f"[api]\nsocket = {json.dumps(str(state / 'kiosk.sock'))}",
        f'[[bus]]\nname = "rs485"\nkind = "modbus-rtu"\nport = {json.dumps(port)}\ntimeout_s = 0.5',
    ]
    for unit, channels in boards:
        lines.append(f'[[board]]\nbus = "rs485"\nunit = {unit}\nchannels = {channels}')
        lines += [
            f'[[locker]]\nlabel = "U{unit}-{ch}"\nsize = "S"\nbus = "rs485"\n'
            f"unit = {unit}\nchannel = {ch}"
            for ch in range(channels)
        ]
    path = state / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n" + mqtt)
    if ledger:
        Ledger.open(state / "ledger.db").close()
    return path


def doctor(config: Path) -> tuple[int, dict[str, Any]]:
    done = kiosk(config, "doctor", "--json")
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {done.returncode}): {done.stderr}") from None
    assert data["ok"] is (done.returncode == 0), data
    return done.returncode, data


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data["checks"]}


def test_a_healthy_bank_passes_with_the_daemon_stopped_and_the_bus_only_read(tmp_path, board):
    config = bank_config(tmp_path, board.path)

    code, data = doctor(config)

    checks = by_name(data)
    assert code == 0, data
    for name in ("config", "key_files", "serial_port rs485", "ledger", "audit_chain", "disk"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["board rs485/1"]["status"] == "ok"
    assert "reports 4 channels" in checks["board rs485/1"]["detail"]
    assert checks["doors"]["status"] == "ok"
    assert checks["doors"]["detail"].startswith("4 door sensors readable")
    assert checks["broker"]["status"] == "skip"
    # Not applicable here (no systemd in a test container) is a skip, never a fail.
    assert all(c["status"] != "fail" for c in data["checks"])
    assert set(checks["clock"]) == {"name", "status", "detail", "fix"}
    # Read-only: the board was identified (FC04) and its doors read (FC02), nothing written.
    seen = board.function_codes()
    assert {2, 4} <= seen
    assert not seen & WRITE_FUNCTIONS, seen


def test_every_failure_comes_with_its_fix_and_exit_1(tmp_path, board):
    # Board 1 is asked for 8 channels (it has 4); board 2 is not on the wire; the code
    # key is world-readable; the ledger was never made.
    config = bank_config(tmp_path, board.path, ((1, 8), (2, 4)), key_mode=0o644, ledger=False)

    code, data = doctor(config)

    checks = by_name(data)
    assert code == 1
    failed = {c["name"] for c in data["checks"] if c["status"] == "fail"}
    assert {"key_files", "board rs485/1", "board rs485/2", "doors", "ledger"} <= failed
    assert all(c["fix"] for c in data["checks"] if c["status"] == "fail"), data
    assert "chmod 0600" in checks["key_files"]["fix"]
    assert "4 channels" in checks["board rs485/1"]["detail"]
    assert "unit" in checks["board rs485/2"]["fix"]
    table = kiosk(config, "doctor")
    assert table.returncode == 1
    assert "fix: " in table.stdout and "FAIL" in table.stdout


def test_a_config_that_does_not_load_fails_and_skips_the_rest(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nid = "x"\nnope = 1\n')

    code, data = doctor(config)

    checks = by_name(data)
    assert code == 1
    assert checks["config"]["status"] == "fail" and "nope" in checks["config"]["detail"]
    assert checks["ledger"]["status"] == "skip"


def test_a_ledger_a_newer_version_wrote_fails_with_the_way_back(tmp_path):
    # As after a rollback of the program without its ledger: `kiosk run` refuses this file
    # (ledger_too_new, exit 78), so doctor must not call it healthy.
    state = short_dir(tmp_path)
    config = write_config(state)
    (state / "site-code.key").chmod(0o600)
    newer = newer_ledger(state / "ledger.db")
    assert kiosk(config, "run").returncode == 78

    code, data = doctor(config)

    checks = by_name(data)
    assert code == 1
    assert checks["ledger"]["status"] == "fail", checks["ledger"]
    assert f"schema {newer}" in checks["ledger"]["detail"]
    assert "newer version" in checks["ledger"]["detail"]
    assert "upgrade the program" in checks["ledger"]["fix"]
    assert "restore a backup made by this version" in checks["ledger"]["fix"]
    assert checks["audit_chain"]["status"] == "skip"


def test_with_the_daemon_running_doctor_asks_it_instead_of_opening_the_bus(tmp_path):
    state = short_dir(tmp_path)
    config = write_config(state)
    (state / "site-code.key").chmod(0o600)
    with DaemonProcess(config):
        code, data = doctor(config)

    checks = by_name(data)
    assert checks["board sim/1"]["status"] == "ok", checks["board sim/1"]
    assert "asked the daemon" in checks["board sim/1"]["detail"]
    assert checks["doors"]["status"] == "ok" and "asked the daemon" in checks["doors"]["detail"]
    assert checks["ledger"]["status"] == "ok" and checks["audit_chain"]["status"] == "ok"
    assert code == 0, data


def _mqtt(broker: Broker, ca: Path | None = None) -> str:
    certs = broker.certs
    assert certs is not None and broker.tls_port
    return (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.tls_port}\n'
        f"ca_file = {json.dumps(str(ca or certs.ca))}\n"
        f"cert_file = {json.dumps(str(certs.client_cert))}\n"
        f"key_file = {json.dumps(str(certs.client_key))}\n"
    )


def test_the_broker_is_checked_over_tls_with_the_client_certificate(tmp_path, board):
    broker = Broker(tmp_path / "broker")
    broker.require("tls")
    broker.start()
    try:
        _, data = doctor(bank_config(tmp_path, board.path, mqtt=_mqtt(broker)))
        checks = by_name(data)
        assert checks["broker"]["status"] == "ok", checks["broker"]
        assert "TLS" in checks["broker"]["detail"]
        assert checks["client_cert"]["status"] in ("ok", "warn")  # the test CA signs for days
        assert re.search(r"\d+ days left", checks["client_cert"]["detail"])

        certs = broker.certs
        assert certs is not None
        wrong = bank_config(tmp_path, board.path, mqtt=_mqtt(broker, certs.other_ca))
        code, data = doctor(wrong)
        assert code == 1 and by_name(data)["broker"]["status"] == "fail"
        assert "ca_file" in by_name(data)["broker"]["fix"]
    finally:
        broker.stop()
    code, data = doctor(bank_config(tmp_path, board.path, mqtt=_mqtt(broker)))
    assert code == 1
    assert by_name(data)["broker"]["status"] == "fail" and by_name(data)["broker"]["fix"]


def test_checks_that_cannot_apply_here_are_skipped_with_the_reason(tmp_path):
    no_tool = local.clock(run=lambda argv: None)
    assert [(c.status, c.detail) for c in no_tool] == [
        ("skip", "timedatectl is not installed here")
    ]
    no_systemd = local.units(run=lambda argv: None, systemd_dir=tmp_path / "no-systemd")
    assert [c.status for c in no_systemd] == ["skip"]
    assert "systemd is not running here" in no_systemd[0].detail


class FakeSystemctl:
    """systemctl's answers on a bank (this machine runs no systemd): unit -> (enabled, active)."""

    def __init__(self, units: dict[str, tuple[str, str]]) -> None:
        self.units = units

    def __call__(self, argv):
        import subprocess

        verb, unit = argv[1], argv[2]
        enabled, active = self.units.get(unit, ("disabled", "inactive"))
        return subprocess.CompletedProcess(argv, 0, enabled if verb == "is-enabled" else active, "")


def test_the_enabled_screen_is_checked_whichever_it_is(tmp_path):
    booted = tmp_path / "systemd"  # stands for /run/systemd/system: systemd is PID 1
    booted.mkdir()

    def rows(units):
        found = local.units(run=FakeSystemctl(units), systemd_dir=booted)
        return [(c.name, c.status) for c in found]

    console = {"kiosk.service": ("enabled", "active"), "kiosk-ui.service": ("enabled", "active")}
    assert rows(console) == [("unit kiosk.service", "ok"), ("unit kiosk-ui.service", "ok")]
    browser = {
        "kiosk.service": ("enabled", "active"),
        "kiosk-web.service": ("enabled", "active"),
        "kiosk-browser.service": ("enabled", "failed"),
    }
    assert rows(browser) == [
        ("unit kiosk.service", "ok"),
        ("unit kiosk-web.service", "ok"),
        ("unit kiosk-browser.service", "fail"),
    ]
    dark = local.units(
        run=FakeSystemctl({"kiosk.service": ("enabled", "active")}), systemd_dir=booted
    )
    assert [(c.name, c.status) for c in dark] == [
        ("unit kiosk.service", "ok"),
        ("unit screen", "fail"),
    ]
    assert "kiosk-ui.service" in dark[1].fix and "kiosk-browser.service" in dark[1].fix
