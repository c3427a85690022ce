"""[site] help_phone and help_text: optional, checked, and a v1 file without them still loads."""

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
