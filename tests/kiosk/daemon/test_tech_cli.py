"""`kiosk tech list|remove` and `set-pin --pin-stdin` as real commands beside a real `kiosk run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon_proc import (
    CLI_TIMEOUT_S,
    DaemonProcess,
    kiosk,
    kiosk_json,
    short_dir,
    write_config,
)

from kiosk.api.client import ApiClient, ApiError


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(short_dir(tmp_path))


def set_pin_stdin(config: Path, name: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk",
            "--config",
            str(config),
            "tech",
            "set-pin",
            name,
            "--pin-stdin",
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def login(config: Path, pin: str) -> str:
    with ApiClient(str(config.parent / "kiosk.sock")) as client:
        try:
            return client.call("tech.login", pin=pin)["technician_id"]
        except ApiError as exc:
            return exc.code


def audit_actions(config: Path) -> list[tuple[str, str]]:
    rc, tail = kiosk_json(config, "audit", "tail", "-n", "100")
    assert rc == 0
    return [(r["action"], r["subject"]) for r in tail["rows"]]


def test_list_shows_name_created_and_last_login_never_the_digest(config):
    with DaemonProcess(config) as daemon:
        for name, pin in (("alice", "52963107"), ("bob", "81726354")):
            done = set_pin_stdin(config, name, pin + "\n")
            assert done.returncode == 0, done.stderr
            assert f"PIN set for {name}" in done.stdout
        assert login(config, "52963107") == "alice"

        rc, data = kiosk_json(config, "tech", "list")
        assert rc == 0
        by_name = {t["name"]: t for t in data["technicians"]}
        assert sorted(by_name) == ["alice", "bob"]
        assert by_name["alice"]["created"] and by_name["alice"]["last_login"]
        assert by_name["bob"]["created"] and by_name["bob"]["last_login"] is None
        digests = [d for (d,) in _digests(config)]
        assert len(digests) == 2
        table = kiosk(config, "tech", "list")
        assert table.returncode == 0, table.stderr
        for text in (json.dumps(data), table.stdout):
            assert not any(d in text for d in digests) and "digest" not in text
        lines = table.stdout.splitlines()
        assert lines[0].split()[:2] == ["name", "created"] and "last login" in lines[0]
        assert any(line.startswith("bob") and line.rstrip().endswith("never") for line in lines)
        assert ("technician.list", "proc-01") in audit_actions(config)
        assert daemon.terminate() == 0


def test_remove_deletes_the_technician_audited_and_their_pin_stops_working(config):
    with DaemonProcess(config) as daemon:
        assert set_pin_stdin(config, "alice", "52963107\n").returncode == 0
        keypad = ApiClient(str(config.parent / "kiosk.sock"))
        with keypad:
            keypad.call("hello", role="public")  # a keypad's rights, as the screen has them
            keypad.session = keypad.call("tech.login", pin="52963107")["session"]
            assert keypad.call("parcels")["parcels"] == []  # a live technician session

            done = kiosk(config, "tech", "remove", "alice")
            assert done.returncode == 0, done.stderr
            assert "technician alice removed (1 session(s) closed)" in done.stdout
            with pytest.raises(ApiError) as refused:
                keypad.call("parcels")
            assert refused.value.code == "not_allowed"
        assert login(config, "52963107") == "invalid_code"
        rc, data = kiosk_json(config, "tech", "list")
        assert rc == 0 and data["technicians"] == []
        assert ("technician.remove", "alice") in audit_actions(config)

        again = kiosk(config, "tech", "remove", "alice")
        assert again.returncode == 1
        assert "Traceback" not in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr
        assert "no technician 'alice'" in again.stderr and "kiosk tech list" in again.stderr
        assert daemon.terminate() == 0


def test_pin_stdin_with_nothing_on_stdin_is_one_line_and_sets_nothing(config):
    with DaemonProcess(config) as daemon:
        done = set_pin_stdin(config, "alice", "")
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "error: --pin-stdin: no PIN on standard input (give it as one line)"
        ]
        rc, data = kiosk_json(config, "tech", "list")
        assert rc == 0 and data["technicians"] == []
        assert daemon.terminate() == 0


def _digests(config: Path) -> list[tuple[str]]:
    import sqlite3

    uri = (config.parent / "ledger.db").absolute().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return conn.execute("SELECT pin_digest FROM technicians").fetchall()
    finally:
        conn.close()
