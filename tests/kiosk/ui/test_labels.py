"""The labels proposed while mapping a bank by touch (kiosk/ui/labels.py): pure, no screen."""

from __future__ import annotations

from kiosk.ui import labels


def test_the_next_door_continues_the_bank_and_skips_taken_labels():
    assert labels.after("A-4", ["A-1", "A-4"]) == "A-5"
    assert labels.after("", ["A-1", "A-2", "B-1", "C-3"]) == "C-4"  # after the highest
    assert labels.after("", []) == "A-1"
    assert labels.after("", ["front", "back"]) == "A-1"  # no column-and-row labels yet
    assert labels.after("B-1", ["B-1", "B-2", "B-3"]) == "B-4"  # never a taken one
    assert labels.after("Z9", ["Z9"]) == "Z-10"


def test_a_step_moves_the_column_letter_or_the_row_number():
    assert labels.step("A-5", columns=1) == "B-1"  # a new column starts at row 1
    assert labels.step("B-1", columns=-1) == "A-1"
    assert labels.step("A-1", columns=-1) == "A-1"  # there is no column before A
    assert labels.step("Z-2", columns=1) == "AA-1"
    assert labels.step("B-2", rows=1) == "B-3"
    assert labels.step("B-1", rows=-1) == "B-1"  # rows start at 1
    assert labels.step("", rows=1) == "A-2"  # nothing to step from: from A-1
