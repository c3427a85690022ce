"""Assignment latency: `ledger.parcels.free_locker` (one query) against the load-all baseline.

The baseline (labelled `load-all`) is the textbook design: it loads every
AVAILABLE locker of the site from the database, keeps those whose size fits
in application code, and takes the minimum by (size != parcel size,
locker_number), locker_number compared as a plain string. `load_all_assign`
does exactly that against the same ledger file, through the same
sqlite-utils row path `ledger.parcels.free_locker` uses.

Both are timed in one run, interleaved (the order alternates every iteration),
with `time.perf_counter_ns`, after a warm-up; the garbage collector stays on,
as it is in the daemon.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.fixture import SIZES, BankState, bank_labels, fill_ledger, modbus_lockers
from bench.stats import US, summarise
from kiosk.domain.assignment import natural_key
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger

#: The baseline's size ordinal (S < M < L).
_ORDINAL = {"S": 0, "M": 1, "L": 2}
_SEED_SQL = "SELECT * FROM lockers WHERE status = ?"


def load_all_assign(ledger: Ledger, parcel_size: Size) -> str | None:
    """The baseline, steps 1 to 3 (step 4, the reservation, is not timed for either)."""
    available = list(ledger.db.query(_SEED_SQL, ["AVAILABLE"]))  # findByLocationAndStatus
    wanted = parcel_size.value
    compatible = [row for row in available if _ORDINAL[row["size"]] >= _ORDINAL[wanted]]
    if not compatible:
        return None  # NoAvailableLockerException
    best = min(compatible, key=lambda row: (row["size"] != wanted, row["label"]))
    return str(best["label"])


def ledger_assign(ledger: Ledger, parcel_size: Size) -> str | None:
    """What the service does: smallest fitting size first, then natural label order."""
    return ledger.parcels.free_locker(parcel_size.rank)


ALGORITHMS: dict[str, Callable[[Ledger, Size], str | None]] = {
    "ledger.free_locker": ledger_assign,
    "load-all": load_all_assign,
}


def time_algorithms(ledger: Ledger, iterations: int, warmup: int) -> dict[str, list[int]]:
    """Per-call latencies in ns; parcel sizes cycle S, M, L; call order alternates."""
    names = list(ALGORITHMS)
    for i in range(warmup):
        for name in names:
            ALGORITHMS[name](ledger, SIZES[i % 3])
    samples: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for i in range(iterations):
        size = SIZES[i % 3]
        for name in names if i % 2 == 0 else reversed(names):
            fn = ALGORITHMS[name]
            start = clock()
            fn(ledger, size)
            samples[name].append(clock() - start)
    return samples


def _size_of(ledger: Ledger, label: str | None) -> str | None:
    return ledger.parcels.locker(label).size.value if label else None


def classify(ledger: Ledger, parcel: Size, ours: str | None, base: str | None) -> str:
    """'agree', 'string_order' (same size, text order) or 'size_step' (baseline went bigger)."""
    if ours == base:
        return "agree"
    if ours is None or base is None:
        return "one_found_none"  # cannot happen: both read the same AVAILABLE set
    if _size_of(ledger, ours) != _size_of(ledger, base):
        return "size_step"
    return "string_order"


def picks_now(ledger: Ledger) -> list[dict[str, Any]]:
    """What each algorithm picks for each parcel size in the file's current state."""
    out = []
    for size in SIZES:
        ours, base = ledger_assign(ledger, size), load_all_assign(ledger, size)
        out.append(
            {
                "parcel": size.value,
                "ledger": ours,
                "ledger_size": _size_of(ledger, ours),
                "load_all": base,
                "load_all_size": _size_of(ledger, base),
                "verdict": classify(ledger, size, ours, base),
            }
        )
    return out


#: Parcel mix of the fill walk: more small parcels than small lockers, so that S
#: lockers run out first and S parcels overflow into M and L (where the rules differ).
WALK_WEIGHTS = (6, 3, 1)


def fill_walk(ledger: Ledger, rng: random.Random, max_steps: int) -> dict[str, Any]:
    """From the current state, assign random parcels until nothing fits; compare at every step.

    Each step reserves the ledger's pick (so both algorithms always see the same
    state). Runs in one transaction that is rolled back: the file is unchanged.
    """
    counts = {"agree": 0, "string_order": 0, "size_step": 0, "one_found_none": 0, "no_locker": 0}
    examples: dict[str, list[str]] = {"string_order": [], "size_step": []}
    conn = ledger.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(max_steps):
            size = rng.choices(SIZES, WALK_WEIGHTS)[0]
            ours, base = ledger_assign(ledger, size), load_all_assign(ledger, size)
            if ours is None and base is None:
                counts["no_locker"] += 1
                if ledger.parcels.free_locker(0) is None:
                    break
                continue
            verdict = classify(ledger, size, ours, base)
            counts[verdict] += 1
            if verdict in examples and len(examples[verdict]) < 4:
                examples[verdict].append(
                    f"{size.value} parcel: ledger {ours} ({_size_of(ledger, ours)}), "
                    f"load-all {base} ({_size_of(ledger, base)})"
                )
            if ours is not None:
                conn.execute("UPDATE lockers SET status = 'RESERVED' WHERE label = ?", (ours,))
    finally:
        conn.execute("ROLLBACK")
    counts["steps"] = sum(v for k, v in counts.items() if k != "no_locker")
    return {"counts": counts, "examples": examples}


def query_plans(ledger: Ledger) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of the SQL each algorithm really runs (caught with a trace)."""
    plans = {}
    for name, algorithm in ALGORITHMS.items():
        seen: list[str] = []
        ledger.conn.set_trace_callback(seen.append)
        try:
            algorithm(ledger, Size.S)
        finally:
            ledger.conn.set_trace_callback(None)
        sql = next(q for q in seen if q.lstrip().upper().startswith("SELECT"))  # values bound
        rows = ledger.conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        plans[name] = [str(r[-1]) for r in rows]
    return plans


def _free_count(ledger: Ledger) -> int:
    row = ledger.conn.execute("SELECT count(*) FROM lockers WHERE status = 'AVAILABLE'").fetchone()
    return int(row[0])


def _scenario(ledger: Ledger, name: str, iterations: int, warmup: int) -> dict[str, Any]:
    gc.collect()  # start clean: the fixture's garbage is not the query's
    samples = time_algorithms(ledger, iterations, warmup)
    return {
        "scenario": name,
        "free_lockers": _free_count(ledger),
        "picks": picks_now(ledger),
        "latency_us": {algo: summarise(s, US) for algo, s in samples.items()},
    }


def run(
    workdir: Path,
    rows: str = "ABCDEFGHIJ",
    per_row: int = 100,
    past_parcels: int = 100_000,
    iterations: int = 3000,
    warmup: int = 300,
    empty_iterations: int = 1000,
    seed: int = 53,
) -> dict[str, Any]:
    """Build the fixture file, time both algorithms on a busy bank and an empty one, compare."""
    rng = random.Random(seed)
    lockers = modbus_lockers(bank_labels(rows, per_row), rng)
    path = workdir / "assignment.db"
    ledger = Ledger.open(path)
    try:
        started = time.perf_counter()
        contents = fill_ledger(ledger, lockers, past_parcels, BankState(), datetime.now(UTC), seed)
        fill_s = time.perf_counter() - started
        busy = _scenario(ledger, "busy", iterations, warmup)
        with ledger.tx():  # everything collected: the baseline's worst case, every row loaded
            ledger.conn.execute(
                "UPDATE lockers SET status = 'AVAILABLE', parcel_id = NULL, reserved_until = NULL"
            )
            # ... and every door shut: a door still open for someone is not free
            ledger.conn.execute("UPDATE door_ops SET state = 'DONE' WHERE state = 'OPEN'")
        empty = _scenario(ledger, "empty", empty_iterations, warmup)
        walk = fill_walk(ledger, rng, max_steps=3 * len(lockers))
        return {
            "lockers": len(lockers),
            "labels": f"{lockers[0].label}..{lockers[-1].label}",
            "sizes": {s.value: sum(1 for lk in lockers if lk.size is s) for s in SIZES},
            "first_by_text_vs_natural": _order_demo(lockers),
            "fixture": contents,
            "fixture_seconds": round(fill_s, 2),
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "scenarios": [busy, empty],
            "walk": walk,
            "plans": query_plans(ledger),
        }
    finally:
        ledger.close()


def _order_demo(lockers: tuple[Any, ...]) -> dict[str, list[str]]:
    """The first labels of row A in the baseline's text order and in the ledger's natural order."""
    row_a = [lk.label for lk in lockers if lk.label.startswith(lockers[0].label[0])]
    return {"text": sorted(row_a)[:4], "natural": sorted(row_a, key=natural_key)[:4]}
