"""Compartment and parcel sizes: S < M < L (also spelled SMALL, MEDIUM, LARGE)."""

from __future__ import annotations

import enum


class Size(enum.Enum):
    S = "S"
    M = "M"
    L = "L"

    @property
    def rank(self) -> int:
        """0 for S, 1 for M, 2 for L: a locker fits a parcel when its rank is >= the parcel's."""
        return _RANK[self]

    def fits(self, parcel: Size) -> bool:
        return self.rank >= parcel.rank

    @classmethod
    def parse(cls, text: str) -> Size:
        """Accept S/M/L or SMALL/MEDIUM/LARGE, any case (docs/contracts/states.md)."""
        key = text.strip().upper()
        key = {"SMALL": "S", "MEDIUM": "M", "LARGE": "L"}.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise ValueError(f"size must be S, M or L, not {text!r}") from None


_RANK = {Size.S: 0, Size.M: 1, Size.L: 2}
