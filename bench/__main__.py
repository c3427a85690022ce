"""`python -m bench [--quick] [--json FILE] [--dir DIR] [--keep] [--only PART]`: run the benchmarks.

Prints the machine and a summary table (Markdown, ready for docs/benchmarks.md);
`--json FILE` writes every figure. `--quick` is a smoke run on a small fixture:
its figures are not the ones to quote.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import assignment, bus, cloud, command, daemon, deadboard, delivery, events, ui
from bench.machine import describe, disk_backed_tmp, load_average

#: Parameters of the full run and of the quick smoke run.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "assignment": {
            "per_row": 100,
            "past_parcels": 100_000,
            "iterations": 3000,
            "warmup": 300,
            "empty_iterations": 1000,
        },
        "delivery": {"deliveries": 240, "past_parcels": 100_000, "empty_commits": 200},
        "cloud": {"events": 20_000, "rounds": 3, "commands": 200},
        "daemon": {"flows": 200, "restarts": 4, "deliveries": 60},
        "bus": {"flows": 200, "scans_fast": 150, "scans_slow": 40},
        "deadboard": {"codes": 20},
        "ui": {"flows": 100, "rss_wait_s": 3.0},
        "events": {"flows": 200},
        "command": {"samples": 200, "rounds": 3},
    },
    "quick": {
        "assignment": {
            "per_row": 10,
            "past_parcels": 2_000,
            "iterations": 150,
            "warmup": 20,
            "empty_iterations": 60,
        },
        "delivery": {"deliveries": 12, "past_parcels": 2_000, "empty_commits": 20},
        "cloud": {"events": 1_000, "rounds": 1, "commands": 10},
        "daemon": {"flows": 16, "restarts": 1, "deliveries": 6},
        "bus": {"flows": 16, "scans_fast": 5, "scans_slow": 3},
        "deadboard": {"codes": 2},
        "ui": {"flows": 3, "rss_wait_s": 1.0},
        "events": {"flows": 4},
        "command": {"samples": 4, "rounds": 1},
    },
}


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _f(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def assignment_table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"Assignment: {result['lockers']} lockers ({result['labels']}, sizes "
        f"{result['sizes']}), parcels by status {result['fixture']['parcels']}",
        "",
        _row(
            ["algorithm", "bank", "free lockers", "calls", "p50 µs", "p99 µs", "max µs", "mean µs"]
        ),
        _row(["---"] * 8),
    ]
    for sc in result["scenarios"]:
        for algo, s in sc["latency_us"].items():
            lines.append(
                _row(
                    [
                        algo,
                        sc["scenario"],
                        sc["free_lockers"],
                        s["n"],
                        _f(s["p50"]),
                        _f(s["p99"]),
                        _f(s["max"]),
                        _f(s["mean"]),
                    ]
                )
            )
    lines += [
        "",
        _row(["bank", "parcel", "ledger picks", "load-all picks", "verdict"]),
        _row(["---"] * 5),
    ]
    for sc in result["scenarios"]:
        for p in sc["picks"]:
            lines.append(
                _row(
                    [
                        sc["scenario"],
                        p["parcel"],
                        f"{p['ledger']} ({p['ledger_size']})",
                        f"{p['load_all']} ({p['load_all_size']})",
                        p["verdict"],
                    ]
                )
            )
    walk = result["walk"]
    lines += [
        "",
        f"Fill walk (empty bank to full, same state for both at every step): {walk['counts']}",
    ]
    for kind, examples in walk["examples"].items():
        for example in examples:
            lines.append(f"  {kind}: {example}")
    return lines


def delivery_table(result: dict[str, Any]) -> list[str]:
    lat = result["latency_ms"]
    rows = [
        ("delivery flow: code -> door open -> shut -> poll", "delivery_flow"),
        ("  submit_code until door seen open", "delivery_open"),
        ("  poll_doors: the close-of-door commit", "delivery_close"),
        ("pickup flow", "pickup_flow"),
        ("  poll_doors: the pickup close commit", "pickup_close"),
        ("announce (draw codes, one commit)", "announce"),
        ("empty commit (floor: one fsync'd write)", "empty_commit"),
    ]
    lines = [
        f"Delivery: {result['lockers']} GPIO lockers (MockFactory + door simulator), "
        f"{result['deliveries']} deliveries + {result['pickups']} pickups, "
        f"commits per flow {result['commits_per_flow']}, poll {result['poll_s']} s",
        "",
        _row(["measure", "n", "p50 ms", "p99 ms", "max ms", "per second"]),
        _row(["---"] * 6),
    ]
    for title, key in rows:
        s = lat[key]
        per_s = _f(s["per_s"]) if "per_s" in s else ""
        lines.append(_row([title, s["n"], _f(s["p50"]), _f(s["p99"]), _f(s["max"]), per_s]))
    lines.append(
        f"\nWall clock over all flows: {result['flows_per_s_wall']} flows/s; audit chain "
        f"{'ok' if result['audit_ok'] else 'BROKEN'} ({result['audit_rows']} rows); "
        f"outbox {result['outbox_depth']} events"
    )
    return lines


def ui_table(result: dict[str, Any]) -> list[str]:
    lat = result["latency_ms"]
    rows = [
        ("first digit at home -> shown (switches to the code screen)", "first_digit"),
        ("next digit -> shown", "next_digit"),
        ("Enter -> 'locker open' screen shown", "enter_to_open"),
        ("for comparison: code.submit alone (pickup, API, no screen)", "api_submit_to_open"),
        ("first digit -> widgets updated (before the paint)", "first_digit_state"),
        ("next digit -> widgets updated", "next_digit_state"),
        ("Enter -> door screen loaded (before the paint)", "enter_to_open_state"),
    ]
    lines = [
        f"Keypad: {result['flows']} deliveries typed at the keypad (KioskApp, headless, 80x24) "
        "through the real daemon (GPIO MockFactory bank, SQLite ledger, Unix socket)",
        "",
        _row(["measure", "n", "p50 ms", "p99 ms", "max ms"]),
        _row(["---"] * 5),
    ]
    for title, key in rows:
        s = lat[key]
        lines.append(_row([title, s["n"], _f(s["p50"]), _f(s["p99"]), _f(s["max"])]))
    mem = result["ui_process_mib"]
    lines.append(
        f"\n`kiosk ui` process on a pty, connected: RSS {mem.get('VmRSS')} MiB "
        f"(peak {mem.get('VmHWM')} MiB)"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small fixture: a smoke run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    parser.add_argument("--dir", type=Path, help="where the ledger files go (default: on disk)")
    parser.add_argument("--keep", action="store_true", help="keep the ledger files")
    parser.add_argument(
        "--only",
        choices=(
            "assignment",
            "delivery",
            "cloud",
            "daemon",
            "bus",
            "deadboard",
            "ui",
            "events",
            "command",
        ),
        help="run one part",
    )
    args = parser.parse_args(argv)

    profile = PROFILES["quick" if args.quick else "full"]
    parent = args.dir or Path(disk_backed_tmp())
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-", dir=parent))
    report: dict[str, Any] = {
        "profile": "quick" if args.quick else "full",
        "machine": describe(workdir),
    }
    started = time.perf_counter()
    try:
        m = report["machine"]
        print(
            f"# {m['cpu']}, {m['cores_usable']}/{m['cores']} cores, {m['ram_mib']} MiB, "
            f"Python {m['python']}, SQLite {m['sqlite']}, {m['filesystem']['type']} on "
            f"{m['filesystem']['device']} ({workdir})"
        )
        if m["in_memory_fs"]:
            print("# warning: the bench directory is in RAM; commit figures will flatter")
        if args.only in (None, "assignment"):
            report["assignment"] = assignment.run(workdir, **profile["assignment"])
            print("\n".join(["", *assignment_table(report["assignment"])]))
        if args.only in (None, "delivery"):
            report["delivery"] = delivery.run(workdir, **profile["delivery"])
            print("\n".join(["", *delivery_table(report["delivery"])]))
        if args.only in (None, "ui"):
            report["ui"] = ui.run(workdir / "ui", **profile["ui"])
            print("\n".join(["", *ui_table(report["ui"])]))
        for name, part in (
            ("daemon", daemon),
            ("bus", bus),
            ("deadboard", deadboard),
            ("events", events),
            ("command", command),
        ):
            if args.only in (None, name):
                report[name] = part.run(workdir, **profile[name])
                print("\n".join(["", *part.table(report[name])]))
        if args.only in (None, "cloud"):
            report["cloud"] = cloud.run(workdir, **profile["cloud"])
            print("\n".join(["", *cloud.cloud_table(report["cloud"])]))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["loadavg_end"] = load_average()
    print(
        f"\n# {report['profile']} run took {report['seconds']} s; load average "
        f"{m['loadavg_start']} at start, {m['loadavg_end']} at end"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
