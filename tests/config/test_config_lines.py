"""The line scan behind `kiosk config check`: keys found where they are, never inside values."""

from __future__ import annotations

import tomllib

from kiosk.config.lines import key_lines, line_of

TEXT = """\
# channel = 1 in a comment
[site]
id = "a # not a comment"
name = '''
[[locker]]
label = "inside a string"
'''

[[bus]]
name = "pi"
relay_pins = [
  5, # channel = 3
  6,
]
sensor_pins = [17,
               27]

[[locker]]
"label" = "A-1"
channel = 0

[[locker]]
channel = 1
inline = { label = "x", unit = 2 }
after = 1
"""


def test_keys_and_tables_are_found_on_their_lines():
    tomllib.loads(TEXT)  # the scan only ever sees valid TOML
    lines = key_lines(TEXT)
    assert lines == {
        "site": 2,
        "site.id": 3,
        "site.name": 4,
        "bus[0]": 9,
        "bus[0].name": 10,
        "bus[0].relay_pins": 11,
        "bus[0].sensor_pins": 15,
        "locker[0]": 18,
        "locker[0].label": 19,
        "locker[0].channel": 20,
        "locker[1]": 22,
        "locker[1].channel": 23,
        "locker[1].inline": 24,
        "locker[1].after": 25,
    }


def test_a_key_not_in_the_file_takes_the_line_of_what_holds_it():
    lines = key_lines(TEXT)
    assert line_of(lines, "bus[0].relay_pins[1]") == 11
    assert line_of(lines, "locker[1].unit") == 22
    assert line_of(lines, "locker[1].inline.unit") == 24
    assert line_of(lines, "mqtt.host") is None
    assert line_of(lines, "locker[5]") is None
