"""`kiosk-cloud watch`: per-site seq bookkeeping (gaps, duplicates) and one line per event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SeqTracker:
    """What the cloud must do with `seq`: notice a gap (lost events) and a repeat (dedupe)."""

    last: dict[str, int] = field(default_factory=dict)
    seen: dict[str, set[int]] = field(default_factory=dict)
    gaps: list[tuple[str, int, int]] = field(default_factory=list)  # site, first, last missing
    duplicates: int = 0

    def see(self, site: str, seq: int) -> str:
        """ "ok", "duplicate", "gap N-M" (missing before this one) or "late" (a gap filled)."""
        seen = self.seen.setdefault(site, set())
        if seq in seen:
            self.duplicates += 1
            return "duplicate"
        seen.add(seq)
        last = self.last.get(site)
        if last is None or seq == last + 1:
            self.last[site] = seq
            return "ok"
        if seq < last:
            self.gaps = [g for g in self.gaps if not (g[0] == site and g[1] <= seq <= g[2])]
            return "late"
        self.last[site] = seq
        self.gaps.append((site, last + 1, seq - 1))
        return f"gap {last + 1}-{seq - 1}"


def describe(site: str, event: dict[str, Any], note: str) -> str:
    body = event.get("body") or {}
    what = " ".join(
        f"{k}={body[k]}"
        for k in ("parcel_id", "locker", "label", "command_id", "ok", "reason")
        if k in body and body[k] is not None
    )
    err = body.get("error")
    if isinstance(err, dict):
        what += f" error={err.get('code')}"
    flag = "" if note == "ok" else f"  [{note.upper()}]"
    return f"{site} #{event.get('seq')} {event.get('ts')} {event.get('type')} {what}{flag}"
