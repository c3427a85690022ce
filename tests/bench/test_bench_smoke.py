"""The benchmark still runs: `python -m bench --quick` end to end, checked for shape only.

No timing is asserted here (timings belong in docs/benchmarks.md, never in a
test): only that both assignment algorithms answered, the fixture holds what
was asked for, and every delivery and pickup went through.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_runs_and_reports(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out), "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ledger.free_locker" in done.stdout and "load-all" in done.stdout
    report = json.loads(out.read_text())
    assert report["profile"] == "quick"
    assert report["machine"]["sqlite"] and report["machine"]["filesystem"]["type"]

    assign = report["assignment"]
    assert sum(assign["fixture"]["lockers"].values()) == assign["lockers"] == 100
    assert sum(assign["sizes"].values()) == 100
    assert (
        assign["fixture"]["parcels"]["PICKED_UP"] + assign["fixture"]["parcels"]["RETURNED"]
        == 2_000
    )
    for scenario in assign["scenarios"]:
        assert set(scenario["latency_us"]) == {"ledger.free_locker", "load-all"}
        for stats in scenario["latency_us"].values():
            assert stats["n"] > 0 and 0 < stats["p50"] <= stats["p99"] <= stats["max"]
        for pick in scenario["picks"]:
            assert pick["ledger"] and pick["load_all"]  # both algorithms returned a locker
    assert [s["free_lockers"] for s in assign["scenarios"]][1] == 100
    assert assign["walk"]["counts"]["one_found_none"] == 0
    assert assign["walk"]["counts"]["steps"] == 100  # every locker assigned once
    assert assign["first_by_text_vs_natural"]["natural"][:2] == ["A-1", "A-2"]

    deliv = report["delivery"]
    assert deliv["deliveries"] == deliv["pickups"] == 12
    lat = deliv["latency_ms"]
    assert lat["delivery_flow"]["n"] == lat["pickup_close"]["n"] == 12
    assert deliv["commits_per_flow"]["delivery"] >= 1
    assert deliv["audit_ok"] is True

    dead = report["deadboard"]
    assert dead["latency_ms"]["n"] == 2  # every code ended in hardware_error
    assert dead["door_reads_while_handled"] == 0 and dead["unlock_frames"] <= 1
    assert not list(tmp_path.glob("kiosk-bench-*"))  # the ledger files were removed

    check_close_event_and_command(report)


def check_close_event_and_command(report: dict) -> None:
    """The door close -> event and signed command -> FC05 parts (`--only events`, `command`)."""
    for part in ("events", "command"):
        result = report[part]
        if "skipped" in result:  # no mosquitto on this machine: said, not failed
            assert "mosquitto" in result["skipped"]
            continue
        if part == "events":
            assert result["flows"] == 4
            series = [result["close_to_event_ms"]]
        else:
            assert result["samples"] == 4 and result["rounds"] == 1
            series = [result["baseline_ms"], result["kiosk_ms"], *result["floor_ms"].values()]
            assert result["ratio_p50"] > 0 and result["floor_ratio_p50"] > 0
            assert set(result["floor_ms"]) == {"commit", "commit_nosync", "verify", "verify_raw"}
            assert result["budget_ms"] > 0 and result["verify_raw_over_budget"] >= 0
        for stats in series:
            assert stats["n"] == 4 and 0 < stats["p50"] <= stats["p99"] <= stats["max"]
