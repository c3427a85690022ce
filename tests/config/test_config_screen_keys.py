"""[site] help_phone, help_text and [[locker]] column, row, rows: optional and checked."""

from __future__ import annotations

from kiosk.config import load_config


def test_help_keys_load(write, doc):
    doc["site"].update(help_phone="+49 (30) 123-4567", help_text="Service 8-20, every day.")
    site = load_config(write(doc)).site
    assert (site.help_phone, site.help_text) == ("+49 (30) 123-4567", "Service 8-20, every day.")


def test_without_help_keys_the_file_is_still_valid(write, doc):
    site = load_config(write(doc)).site
    assert (site.help_phone, site.help_text) == ("", "")


def test_a_help_phone_with_letters_is_refused_by_name(write, doc, refused):
    doc["site"]["help_phone"] = "call Bob"
    err = refused(write(doc))
    assert err.key == "site.help_phone" and "phone number" in err.reason


def test_locker_place_keys_load_and_v1_lockers_without_them_still_do(write, doc):
    doc["locker"][0].update(column=2, row=1, rows=3)
    lockers = load_config(write(doc)).lockers
    assert (lockers[0].column, lockers[0].row, lockers[0].rows) == (2, 1, 3)
    assert (lockers[1].column, lockers[1].row, lockers[1].rows) == (None, None, 1)


def test_a_locker_row_of_0_is_refused_by_name(write, doc, refused):
    doc["locker"][0]["row"] = 0
    assert refused(write(doc)).key == "locker[0].row"
