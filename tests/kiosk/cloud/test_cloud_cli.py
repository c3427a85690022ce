"""`kiosk-cloud`: keys, a reservation and a remote opening against a live daemon, watch, nearby."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cloudrig import PREFIX, SITE, cloud_client, wait_for
from support.closed_stdout import EXIT_CLOSED_STDOUT, run_with_closed_stdout

from kiosk_cloud.client import great_circle_km, rank_sites
from kiosk_cloud.watch import SeqTracker


async def kiosk_cloud(broker, *argv: str, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kiosk_cloud",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--prefix",
        PREFIX,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


def _private_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def test_keygen_writes_private_files_0600_and_never_overwrites(tmp_path, broker):
    rc, out, _ = await kiosk_cloud(broker, "keygen", str(tmp_path / "keys"))
    assert rc == 0, out
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "keys").iterdir()}
    assert modes == {"cloud-ed25519.key": 0o600, "cloud-ed25519.pem": 0o644, "site-code.key": 0o600}
    rc, _, err = await kiosk_cloud(broker, "keygen", str(tmp_path / "keys"))
    assert rc == 1 and "not overwriting" in err


async def test_reserve_then_deliver_with_the_printed_code_and_open_remotely(rig, broker, cloud_key):
    keyfile = Path(rig.config.keys.site_code_key_file)
    cloud_pem = keyfile.parent / "cloud.key"
    cloud_pem.write_bytes(_private_pem(cloud_key))
    common = ["--cloud-key", str(cloud_pem), "--code-key", str(keyfile)]
    rc, out, err = await kiosk_cloud(
        broker, *common, "reserve", "--site", SITE, "--size", "L", "--parcel-id", "CLI-1", "--json"
    )
    assert rc == 0, err
    printed = json.loads(out)
    assert printed["result"]["ok"] and printed["parcel_id"] == "CLI-1"
    assert len(printed["delivery_code"]) == 6 and printed["delivery_code"].isdigit()
    # the kiosk holds only digests; the printed code opens the door
    opened = await rig.daemon.service.submit_code(printed["delivery_code"])
    assert opened.locker == "C-1"
    rig.doors.close("C-1")
    await wait_for(lambda: rig.ledger.parcels.get("CLI-1").status.value == "DELIVERED")

    rc, out, err = await kiosk_cloud(
        broker, *common, "open", "A-2", "--site", SITE, "--reason", "customer on the phone"
    )
    assert rc == 0, err
    assert rig.doors.pulses["A-2"] == 1
    rc, _, err = await kiosk_cloud(broker, *common, "cancel", "NOPE", "--site", SITE)
    assert rc == 1 and "not_found" in err
    rc, _, err = await kiosk_cloud(
        broker, *common, "extend", "CLI-1", "--site", SITE, "--expires-at", "2020-01-01T00:00:00Z"
    )
    assert rc == 1 and "bad_request" in err


async def test_watch_reports_events_in_order(rig, broker):
    events = f"{PREFIX}/{SITE}/events"
    before = broker.subscriptions(events)
    watch = asyncio.create_task(
        kiosk_cloud(broker, "watch", "--site", SITE, "--count", "2", "--json")
    )
    await wait_for(lambda: broker.subscriptions(events) > before, timeout=30)  # it listens now
    rig.daemon.service.set_service("C-1", False, "watch test")
    rig.daemon.service.set_service("C-1", True, "watch test")
    rc, out, err = await watch
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in lines] == ["locker.out_of_service", "locker.in_service"]
    assert [e["check"] for e in lines] == ["ok", "ok"]


def test_seq_tracker_sees_gaps_duplicates_and_late_arrivals():
    t = SeqTracker()
    assert [t.see("a", s) for s in (5, 6, 6, 9, 7, 8, 10)] == [
        "ok",
        "ok",
        "duplicate",
        "gap 7-8",
        "late",
        "late",
        "ok",
    ]
    assert t.gaps == [] and t.duplicates == 1
    t.see("a", 12)
    assert t.gaps == [("a", 11, 11)]


async def test_nearby_ranks_two_sites_by_distance_and_free_size(broker):
    def state(site, lat, lon, free_l):
        counts = {"total": 2, "available": 1, "out_of_service": 0}
        return {
            "site": site,
            "location": {"name": site, "address": f"{site} street", "lat": lat, "lon": lon},
            "lockers": {"S": counts, "M": counts, "L": {**counts, "available": free_l}},
            "ts": "2026-11-24T12:00:00Z",
        }

    pub = await asyncio.to_thread(cloud_client, broker)
    try:
        for s in (
            state("berlin-mitte", 52.520, 13.405, 0),
            state("potsdam", 52.391, 13.065, 2),
            state("hamburg", 53.551, 9.993, 2),
        ):
            await asyncio.to_thread(
                pub.publish, f"{PREFIX}/{s['site']}/state", json.dumps(s).encode(), True
            )
    finally:
        await asyncio.to_thread(pub.close)
    near = ["nearby", "--lat", "52.50", "--lon", "13.40", "--radius-km", "50", "--json"]
    rc, out, err = await kiosk_cloud(broker, *near)
    assert rc == 0, err
    sites = json.loads(out)["sites"]
    assert [s["site"] for s in sites] == ["berlin-mitte", "potsdam"]  # hamburg: 250 km away
    assert sites[0]["distance_km"] < sites[1]["distance_km"]
    rc, out, _ = await kiosk_cloud(broker, *near[:-1], "--size", "L", "--json")
    assert [s["site"] for s in json.loads(out)["sites"]] == ["potsdam"]  # mitte has no free L
    rc, out, _ = await kiosk_cloud(broker, *near[:-1])
    assert rc == 0 and "berlin-mitte" in out.splitlines()[0]


def test_great_circle_distance_is_right():
    assert abs(great_circle_km(52.5200, 13.4050, 48.8566, 2.3522) - 878) < 2  # Berlin-Paris
    assert rank_sites([{"site": "x", "location": {"lat": None, "lon": None}}], 0, 0, 10) == []


# --- the command's home: `kiosk-cloud`, not the device's `kiosk` ------------------------

ACTIONS = ["keygen", "reserve", "cancel", "extend", "schedule-return", "open", "watch", "nearby"]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_the_kiosk_cloud_script_has_every_action_and_exits_2_on_bad_usage():
    script = Path(sys.executable).with_name("kiosk-cloud")
    done = _run(str(script), "--help")
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^ {4}([a-z-]+) ", done.stdout, re.MULTILINE)
    assert listed == ACTIONS, done.stdout
    done = _run(str(script), "reserve", "--size", "S")  # no --site
    assert done.returncode == 2 and "--site" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [["cloud"], ["cloud", "--broker", "127.0.0.1:1", "reserve", "--site", "X", "--size", "S"]],
    ids=["bare", "an-old-command-line"],
)
def test_kiosk_cloud_on_the_device_names_kiosk_cloud_and_exits_2(argv):
    done = _run(sys.executable, "-m", "kiosk", *argv)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and "`kiosk-cloud`" in line


# --- a stdout closed before the command is done (`kiosk-cloud watch | head -3`) -----

#: Python's stdout on a pipe: block-buffered (the broken pipe shows at the last flush),
#: or unbuffered (at the first print). Both must end the same way.
BUFFERING = {"buffered": None, "unbuffered": "1"}


def _env(buffering: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if buffering is not None:
        env["PYTHONUNBUFFERED"] = buffering
    return env


def _quiet_end(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == EXIT_CLOSED_STDOUT, done.stderr
    assert done.stderr == ""  # no traceback, no "error: [Errno 32] Broken pipe"


@pytest.mark.parametrize("buffering", BUFFERING.values(), ids=BUFFERING.keys())
def test_a_closed_stdout_ends_keygen_quietly_with_every_key_written(tmp_path, buffering):
    keys = tmp_path / "keys"

    done = run_with_closed_stdout(
        [sys.executable, "-m", "kiosk_cloud", "keygen", str(keys)], _env(buffering)
    )

    _quiet_end(done)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in keys.iterdir()}
    assert modes == {"cloud-ed25519.key": 0o600, "cloud-ed25519.pem": 0o644, "site-code.key": 0o600}


@pytest.mark.parametrize("buffering", BUFFERING.values(), ids=BUFFERING.keys())
@pytest.mark.parametrize("json_opt", [[], ["--json"]], ids=["table", "json"])
def test_a_closed_stdout_ends_a_broker_command_quietly(broker, buffering, json_opt):
    argv = [sys.executable, "-m", "kiosk_cloud", "--broker", f"127.0.0.1:{broker.port}"]
    argv += ["--prefix", PREFIX, "nearby", "--lat", "0", "--lon", "0", "--radius-km", "1"]

    _quiet_end(run_with_closed_stdout([*argv, "--wait", "0.2", *json_opt], _env(buffering)))
