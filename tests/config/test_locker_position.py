"""The optional [[locker]] column, row and rows keys (a picture of the bank's front)."""

from __future__ import annotations

import pytest

from kiosk.config import load_config


def test_a_config_without_them_loads_placed_by_its_label(write, doc):
    locker = load_config(write(doc)).lockers[0]
    assert (locker.column, locker.row, locker.rows) == (None, None, 1)


def test_given_they_load(write, doc):
    doc["locker"][2].update(column=3, row=1, rows=2)
    locker = load_config(write(doc)).lockers[2]
    assert (locker.column, locker.row, locker.rows) == (3, 1, 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("column", 0),
        ("column", 65),
        ("row", 0),
        ("row", 65),
        ("rows", 0),
        ("rows", 17),
        ("row", "2"),
    ],
)
def test_out_of_range_is_an_error_naming_the_key(write, doc, refused, key, value):
    doc["locker"][1][key] = value
    path = write(doc)
    assert f"locker[1].{key}:" in str(refused(path))
