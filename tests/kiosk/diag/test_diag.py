"""`kiosk diag --out FILE.tar.gz` against a real daemon that has delivered a parcel and has a
technician PIN: the bundle has what support asks for, and no key, code, PIN digest or private key.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from support.broker import free_port, make_certs
from support.daemon_proc import (
    CLI_TIMEOUT_S,
    DaemonProcess,
    kiosk,
    kiosk_json,
    short_dir,
    wait_until,
    write_config,
)

from kiosk.domain.codes import code_digest, parse_code_key

PIN = "48213957"


def set_pin(config: Path, technician: str, pin: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(config), "tech", "set-pin", technician],
        input=f"{pin}\n{pin}\n",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        start_new_session=True,  # no controlling terminal: getpass reads stdin
        check=False,
    )
    assert done.returncode == 0, done.stderr


def bundle(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {
            m.name.removeprefix("kiosk-diag/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_the_bundle_has_what_support_needs_and_no_secret(tmp_path):
    state = short_dir(tmp_path)
    config = write_config(state)
    certs = make_certs(state / "certs")
    # A cloud link to a port where no broker listens: the daemon runs offline, but the
    # config names a CA, a client certificate and its private key.
    config.write_text(
        config.read_text()
        + f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\n'
        + f'ca_file = "{certs.ca}"\ncert_file = "{certs.client_cert}"\n'
        + f'key_file = "{certs.client_key}"\n'
    )
    key_text = (state / "site-code.key").read_text()
    key = parse_code_key(key_text, "site-code.key")
    out = state / "diag.tar.gz"
    with DaemonProcess(config):
        rc, parcel = kiosk_json(config, "parcels", "announce", "--size", "S")
        assert rc == 0, parcel
        rc, opened = kiosk_json(config, "code", parcel["delivery_code"])
        assert rc == 0 and opened["ok"], opened
        wait_until(
            lambda: kiosk_json(config, "status")[1]["lockers"][0]["status"] == "OCCUPIED",
            what="the delivery recorded",
        )
        set_pin(config, "alice", PIN)
        done = kiosk(config, "diag", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o077 == 0

    parts = bundle(out)
    assert {
        "versions.txt",
        "config.json",
        "doctor.json",
        "journal-kiosk.service.txt",
        "journal-kiosk-ui.service.txt",
        "audit-tail.json",
        "outbox.json",
        "boards.json",
    } <= set(parts)
    assert b"locker-kiosk" in parts["versions.txt"]
    redacted = json.loads(parts["config.json"])
    assert redacted["site"]["id"] == "proc-01"
    assert redacted["keys"]["site_code_key_file"] == "<redacted>"
    assert redacted["mqtt"]["key_file"] == "<redacted>"
    names = {c["name"] for c in json.loads(parts["doctor.json"])["checks"]}
    assert {"config", "ledger", "audit_chain", "doors"} <= names
    actions = [row["action"] for row in json.loads(parts["audit-tail.json"])]
    assert "technician.set_pin" in actions
    assert json.loads(parts["outbox.json"])["outbox_depth"] >= 1
    boards = json.loads(parts["boards.json"])
    assert boards["configured"] == [{"bus": "sim", "unit": 1, "profile": "kiosk-v1", "channels": 4}]
    assert isinstance(boards["daemon"], dict), boards
    assert boards["daemon"]["boards"][0]["online"] is True

    with sqlite3.connect(f"file:{state / 'ledger.db'}?mode=ro", uri=True) as conn:
        pin_digest = conn.execute("SELECT pin_digest FROM technicians").fetchone()[0]
        code_digests = [d for (d,) in conn.execute("SELECT digest FROM codes")]
    client_key = certs.client_key.read_text()
    key_body = "".join(client_key.splitlines()[1:-1])
    forbidden = {
        "the site code key": key_text.strip(),
        "the site code key's bytes (base64url)": base64.urlsafe_b64encode(key).decode(),
        "the delivery code": parcel["delivery_code"],
        "the pickup code": parcel["pickup_code"],
        "the delivery digest": code_digest(key, parcel["delivery_code"]),
        "the pickup digest": code_digest(key, parcel["pickup_code"]),
        "a PIN": PIN,
        "the PIN digest": pin_digest,
        "a private key": "PRIVATE KEY",
        "the client key's body": key_body[:40],
        "the site code key's path": str(state / "site-code.key"),
        "the client key's path": str(certs.client_key),
        **{f"code digest {d}": d for d in code_digests},
    }
    for name, data in parts.items():
        text = data.decode("utf-8", errors="replace")
        for what, secret in forbidden.items():
            assert secret not in text, f"{name} holds {what}"


def test_an_existing_out_file_is_refused_and_left_alone(tmp_path):
    config = write_config(short_dir(tmp_path))
    out = tmp_path / "diag.tar.gz"
    out.write_bytes(b"mine")
    done = kiosk(config, "diag", "--out", str(out))
    assert done.returncode == 1
    assert "exists already" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"mine"


@pytest.mark.parametrize("name", ["diag.zip", "diag.tar", "diag.gz", "diag"])
def test_an_out_name_that_is_not_a_gzip_tar_is_bad_usage_and_nothing_is_written(tmp_path, name):
    config = write_config(short_dir(tmp_path))
    out = tmp_path / name

    done = kiosk(config, "diag", "--out", str(out))

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: --out ") and str(out) in line, line
    assert ".tar.gz" in line and ".tgz" in line, line
    assert not out.exists()


@pytest.mark.parametrize("name", ["diag.tgz", "DIAG.TAR.GZ"])
def test_a_tgz_name_is_a_gzip_tar_too(tmp_path, name):
    config = write_config(short_dir(tmp_path))
    out = tmp_path / name

    done = kiosk(config, "diag", "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert "versions.txt" in bundle(out)
