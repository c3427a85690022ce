"""`kiosk run` as a real process on a simulated board, driven only by `kiosk` commands.

The daemon is `python -m kiosk --config FILE run` on a `simulated` bus: the
simulated lock board serves a real pty and the daemon talks to it through the
real Modbus backend. Its simulated person shuts a door `door_close_s` after it
sprang open. The test process cannot reach that board, so jammed doors are
left to the in-process tests (test_daemon_api.py, test_notify.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon_proc import (
    DaemonProcess,
    kiosk,
    kiosk_json,
    short_dir,
    wait_until,
    write_config,
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


@pytest.fixture
def config(state: Path) -> Path:
    return write_config(state, door_close_s=0.5)


@pytest.fixture
def daemon(config: Path):
    with DaemonProcess(config) as proc:
        yield proc


def locker(config: Path, label: str) -> dict:
    rc, status = kiosk_json(config, "status")
    assert rc == 0, status
    return next(lk for lk in status["lockers"] if lk["label"] == label)


def parcel(config: Path, parcel_id: str) -> dict:
    rc, listing = kiosk_json(config, "parcels")
    assert rc == 0, listing
    return next(p for p in listing["parcels"] if p["parcel_id"] == parcel_id)


def announce(config: Path, size: str = "M") -> dict:
    rc, data = kiosk_json(config, "parcels", "announce", "--size", size)
    assert rc == 0, data
    assert set(data) >= {"parcel_id", "delivery_code", "pickup_code", "size"}
    return data


def wrong_code(*known: str) -> str:
    """A well-formed code that is none of `known`."""
    return next(c for c in ("000000", "111111", "222222") if c not in known)


def test_delivery_and_pickup_through_kiosk_commands(config, daemon):
    announced = announce(config, "M")
    assert announced["size"] == "M"
    assert isinstance(announced["delivery_code"], str) and len(announced["delivery_code"]) == 6

    rc, opened = kiosk_json(config, "code", announced["delivery_code"])
    assert rc == 0, opened
    assert {k: opened[k] for k in ("ok", "role", "locker")} == {
        "ok": True,
        "role": "courier",
        "locker": "B-1",
    }
    assert "error" in opened and not opened["error"]

    # The simulated courier shuts the door after door_close_s; supervision records it.
    wait_until(lambda: locker(config, "B-1")["status"] == "OCCUPIED", what="B-1 OCCUPIED")
    b1 = locker(config, "B-1")
    assert b1["parcel_id"] == announced["parcel_id"]
    assert parcel(config, announced["parcel_id"])["status"] == "DELIVERED"

    rc, picked = kiosk_json(config, "code", announced["pickup_code"])
    assert rc == 0, picked
    assert (picked["ok"], picked["role"], picked["locker"]) == (True, "customer", "B-1")

    wait_until(
        lambda: parcel(config, announced["parcel_id"])["status"] == "PICKED_UP",
        what="parcel PICKED_UP",
    )
    done = parcel(config, announced["parcel_id"])
    assert done["needs_check"] is False and done["size"] == "M"
    after = locker(config, "B-1")
    assert after["status"] == "AVAILABLE" and after["parcel_id"] is None

    # Human output too: the table names the locker and its state.
    table = kiosk(config, "status")
    assert table.returncode == 0 and "B-1" in table.stdout and "AVAILABLE" in table.stdout


def test_a_wrong_code_is_refused_with_exit_1_and_invalid_code(config, daemon):
    announced = announce(config, "S")
    code = wrong_code(announced["delivery_code"], announced["pickup_code"])
    rc, refused = kiosk_json(config, "code", code)
    assert rc == 1
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_code"
    assert refused["error"]["message"]
    human = kiosk(config, "code", code)
    assert human.returncode == 1 and "invalid_code" in human.stderr
    assert all(lk["status"] == "AVAILABLE" for lk in kiosk_json(config, "status")[1]["lockers"])


def test_lockout_after_five_wrong_codes_survives_a_restart_until_reset(config, daemon):
    announced = announce(config, "S")
    wrong = wrong_code(announced["delivery_code"], announced["pickup_code"])
    codes = [kiosk_json(config, "code", wrong) for _ in range(5)]
    assert [rc for rc, _ in codes] == [1] * 5
    assert [r["error"]["code"] for _, r in codes] == ["invalid_code"] * 4 + ["locked_out"]

    # The right code is refused too while the back-off runs, and after a restart.
    rc, refused = kiosk_json(config, "code", announced["delivery_code"])
    assert rc == 1 and refused["error"]["code"] == "locked_out"
    assert daemon.terminate() == 0
    daemon.start()
    rc, refused = kiosk_json(config, "code", announced["delivery_code"])
    assert rc == 1 and refused["error"]["code"] == "locked_out"

    reset = kiosk(config, "lockout", "reset")
    assert reset.returncode == 0, reset.stderr
    rc, opened = kiosk_json(config, "code", announced["delivery_code"])
    assert rc == 0 and opened["ok"] is True and opened["role"] == "courier", opened


def test_technician_commands(config, daemon, state):
    opened = kiosk(config, "open", "A-1", "--reason", "inspection")
    assert opened.returncode == 0, opened.stderr
    assert "A-1" in opened.stdout

    out = kiosk(config, "service", "A-2", "out", "--reason", "broken hinge")
    assert out.returncode == 0, out.stderr
    assert locker(config, "A-2")["status"] == "OUT_OF_SERVICE"
    back = kiosk(config, "service", "A-2", "in", "--reason", "hinge fixed")
    assert back.returncode == 0, back.stderr
    assert locker(config, "A-2")["status"] == "AVAILABLE"

    # A-1's door shuts by itself; the technician's operation is then closed.
    wait_until(
        lambda: any(
            r["action"] == "door.closed" and r["subject"] == "A-1"
            for r in kiosk_json(config, "audit", "tail", "-n", "50")[1]["rows"]
        ),
        what="A-1 door.closed in the audit log",
    )
    rc, tail = kiosk_json(config, "audit", "tail", "-n", "50")
    assert rc == 0
    actions = [(r["action"], r["subject"]) for r in tail["rows"]]
    for expected in [
        ("technician.open", "A-1"),
        ("door.opened", "A-1"),
        ("locker.out_of_service", "A-2"),
        ("locker.in_service", "A-2"),
    ]:
        assert expected in actions
    human = kiosk(config, "audit", "tail")
    assert human.returncode == 0 and "locker.in_service" in human.stdout

    selftest = kiosk(config, "selftest")
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    assert "self-test passed" in selftest.stdout

    # A relative DEST is the caller's, not the daemon's working directory.
    elsewhere = state / "elsewhere"
    elsewhere.mkdir()
    backup = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(config), "backup", "copy.db"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        timeout=60,
        check=False,
    )
    assert backup.returncode == 0, backup.stderr
    copy = elsewhere / "copy.db"
    assert copy.is_file()
    again = kiosk(config, "backup", str(copy))
    assert again.returncode == 1 and "exists" in again.stderr

    # `audit verify --db` needs no config: none is given, and none is found.
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    verify = subprocess.run(
        [sys.executable, "-m", "kiosk", "audit", "verify", "--db", str(copy)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert "verified" in verify.stdout


def test_status_without_a_daemon_is_exit_3_and_says_what_to_do(config):
    done = kiosk(config, "status")
    assert done.returncode == 3
    assert "kiosk run" in done.stderr or "systemctl" in done.stderr
    rc_json = kiosk(config, "status", "--json")
    assert rc_json.returncode == 3


def test_sigterm_exits_0_and_removes_the_socket(config, daemon):
    assert daemon.socket.exists()
    assert daemon.terminate(timeout=15) == 0
    assert not daemon.socket.exists()
    done = kiosk(config, "status")
    assert done.returncode == 3 and "kiosk run" in done.stderr
    assert "kiosk daemon stopped" in daemon.log()


def test_a_stale_socket_left_by_sigkill_is_replaced(config, daemon):
    announced = announce(config, "L")
    daemon.signal(signal.SIGKILL)
    daemon.wait()
    assert daemon.socket.exists()  # nobody removed it: the process just vanished

    done = kiosk(config, "status")
    assert done.returncode == 3 and done.stderr.strip()

    daemon.start()  # the same socket path, the stale file replaced
    hello = daemon.hello()
    assert hello is not None and hello["site"] == "proc-01"
    assert parcel(config, announced["parcel_id"])["status"] == "EXPECTED"
    assert daemon.terminate() == 0
    assert not daemon.socket.exists()


def test_a_second_daemon_leaves_the_running_one_alone(state):
    """Not its socket, not its door operation in flight (no recovery of a live journal)."""
    config = write_config(state, door_close_s=0)  # nobody shuts the door: the op stays open
    with DaemonProcess(config) as first:
        opened = kiosk(config, "open", "A-1", "--reason", "inspection")
        assert opened.returncode == 0, opened.stderr
        second = DaemonProcess(config)
        second.log_path = state / "second.log"
        try:
            second.start(wait=False)
            assert second.wait() == 73  # EX_CANTCREAT: the socket is another daemon's
        finally:
            second.close()
        assert "Another daemon is serving" in second.log()
        assert first.hello() is not None  # its socket is still there
        assert locker(config, "A-1")["needs_check"] is False
        rc, tail = kiosk_json(config, "audit", "tail", "-n", "50")
        assert rc == 0 and "door_op.recovered" not in {r["action"] for r in tail["rows"]}
