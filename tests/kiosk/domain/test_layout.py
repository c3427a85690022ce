"""The bank's front as a grid: from config keys, from labels like A-1, and the rest."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.domain.layout import Cell, column_number, from_label, place


@dataclass(frozen=True)
class Lk:
    label: str
    column: int | None = None
    row: int | None = None
    rows: int = 1


def test_labels_like_a_1_give_column_and_row():
    assert from_label("A-1") == (1, 1)
    assert from_label("B12") == (2, 12)
    assert from_label("AA-3") == (27, 3)
    assert from_label("Box") is None and from_label("7") is None
    assert column_number("Z") == 26


def test_config_keys_win_over_the_label_and_a_tall_compartment_spans_rows():
    cells = place([Lk("A-1"), Lk("A-2"), Lk("B-1", row=1, rows=2), Lk("X-9", column=3, row=1)])
    assert cells == (
        Cell("A-1", 1, 1),
        Cell("A-2", 1, 2),
        Cell("B-1", 2, 1, 2),
        Cell("X-9", 3, 1),
    )


def test_lockers_with_no_place_fill_a_column_to_the_right_in_order():
    cells = place([Lk("A-1"), Lk("left", rows=2), Lk("right")])
    assert cells == (Cell("A-1", 1, 1), Cell("left", 2, 1, 2), Cell("right", 2, 3))
