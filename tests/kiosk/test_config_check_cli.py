"""`kiosk config check [FILE]` as a real command: every error at once, `FILE:LINE: key: reason`."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

CLI_TIMEOUT_S = 60.0

#: Line numbers below are this text's (1-based).
MANY_ERRORS = """\
[site]
id = "has space"
colour = "blue"

[ledger]
path = "ledger.db"

[keys]
site_code_key_file = "site-code.key"

[api]
socket = "kiosk.sock"
note = \"\"\"
channel = 5
\"\"\"

[[bus]]
name = "sim"
kind = "simulated"
poll_ms = 1

[[board]]
bus = "sim"
unit = 1
channels = 4

[[locker]]
label = "A-1"
size = "S"
bus = "sim"
unit = 1
channel = 0

[[locker]]
label = "A-2"
size = "XL"
bus = "sim"
unit = 1
channel = 99

[[locker]]
label = "A-3"
size = "S"
bus = "sim"
unit = 1

[policy]
pickup_days = 99
"""

#: Every key loads; only the checks across tables fail (pass 2).
CLASHES = """\
[site]
id = "s1"

[ledger]
path = "ledger.db"

[keys]
site_code_key_file = "site-code.key"

[api]
socket = "kiosk.sock"

[[bus]]
name = "sim"
kind = "simulated"

[[board]]
bus = "sim"
unit = 1
channels = 2
pulse_ms = 900
max_pulse_ms = 500

[[locker]]
label = "A-1"
size = "S"
bus = "sim"
unit = 1
channel = 0

[[locker]]
label = "A-1"
size = "S"
bus = "sim"
unit = 1
channel = 0

[[locker]]
label = "C-1"
size = "L"
bus = "nowhere"
unit = 1
channel = 1
"""


def write(folder: Path, text: str, key: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if key:
        (folder / "site-code.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path = folder / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_every_error_of_the_first_pass_at_once_with_lines_labels_and_1_based_positions(
    tmp_path,
):
    path = write(tmp_path, MANY_ERRORS)
    done = check("config", "check", str(path))
    assert done.returncode == 78
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}:2: site.id: must be 1 to 64 characters of A-Z a-z 0-9 _ -, got 'has space'",
        f"{path}:3: site.colour: unknown key (did you mean 'lon'?)",
        f"{path}:13: api.note: unknown key (did you mean 'socket'?)",
        f"{path}:20: bus[1].poll_ms: must be an integer from 10 to 10000, got 1",
        f"{path}:36: locker[2].size (A-2): must be S, M or L, got 'XL'",
        f"{path}:39: locker[2].channel (A-2): must be an integer from 0 to 63, got 99",
        f"{path}:41: locker[3].channel (A-3): missing (required)",
        f"{path}:48: policy.pickup_days: must be an integer from 1 to 30, got 99",
    ]


def test_every_clash_between_tables_at_once(tmp_path):
    path = write(tmp_path, CLASHES)
    done = check("config", "check", str(path))
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        f"{path}:21: board[1].pulse_ms: must not exceed max_pulse_ms (500), got 900",
        f"{path}:32: locker[2].label (A-1): duplicate label 'A-1' (also locker[1])",
        f"{path}:36: locker[2].channel (A-1): channel 0 of bus 'sim' unit 1 is already used "
        "by locker[1] (A-1)",
        f"{path}:41: locker[3].bus (C-1): no [[bus]] named 'nowhere'",
    ]


def test_no_file_given_checks_the_configured_one_honouring_config_and_the_environment(tmp_path):
    bad = write(tmp_path / "bad", CLASHES)
    good = write(tmp_path / "good", CLASHES.split("\n[[locker]]")[0].replace("900", "400"))
    with (tmp_path / "good" / "kiosk.toml").open("a") as fh:
        fh.write('\n[[locker]]\nlabel = "A-1"\nsize = "S"\nbus = "sim"\nunit = 1\nchannel = 0\n')
    by_option = check("--config", str(bad), "config", "check")
    assert by_option.returncode == 78
    assert by_option.stderr.startswith(f"{bad}:21: board[1].pulse_ms:")
    by_env = check("config", "check", env={"KIOSK_CONFIG": str(bad)})
    assert by_env.returncode == 78 and by_env.stderr == by_option.stderr
    # The option wins over the environment, as for every other command.
    ok = check("--config", str(good), "config", "check", env={"KIOSK_CONFIG": str(bad)})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{good}: ok"


def test_strict_lists_a_missing_key_file_beside_the_other_errors(tmp_path):
    path = write(tmp_path, MANY_ERRORS, key=False)
    done = check("config", "check", "--strict", str(path))
    assert done.returncode == 78
    assert f"{path}:9: keys.site_code_key_file: file not found: {tmp_path / 'site-code.key'}" in (
        done.stderr.splitlines()
    )
    assert len(done.stderr.splitlines()) == 9
    relaxed = check("config", "check", str(path))
    assert relaxed.stderr.splitlines()[0] == (
        f"warning: {path}:9: keys.site_code_key_file: file not found: {tmp_path / 'site-code.key'}"
    )


#: Key errors (site.id, bus[2].poll_ms) and clashes between tables in one file.
KEYS_AND_CLASHES = """\
[site]
id = "has space"

[ledger]
path = "ledger.db"

[keys]
site_code_key_file = "site-code.key"

[api]
socket = "kiosk.sock"

[[bus]]
name = "sim"
kind = "simulated"

[[bus]]
name = "broken"
kind = "simulated"
poll_ms = 1

[[board]]
bus = "sim"
unit = 1
channels = 4

[[board]]
bus = "broken"
unit = 1

[[locker]]
label = "A-1"
size = "S"
bus = "sim"
unit = 1
channel = 9

[[locker]]
label = "B-1"
size = "S"
bus = "nowhere"
unit = 1
channel = 0

[[locker]]
label = "C-1"
size = "S"
bus = "broken"
unit = 1
channel = 0
"""


def test_key_errors_and_clashes_between_tables_at_once(tmp_path):
    """The clashes that can still be checked are listed beside the key errors; a locker on a
    bus whose own keys were wrong (C-1 on 'broken') is not checked against it."""
    path = write(tmp_path, KEYS_AND_CLASHES)
    done = check("config", "check", str(path))
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        f"{path}:2: site.id: must be 1 to 64 characters of A-Z a-z 0-9 _ -, got 'has space'",
        f"{path}:20: bus[2].poll_ms: must be an integer from 10 to 10000, got 1",
        f"{path}:36: locker[1].channel (A-1): must be below the board's channels (4), got 9",
        f"{path}:41: locker[2].bus (B-1): no [[bus]] named 'nowhere'",
    ]


PLACED = """\
[site]
id = "s1"

[ledger]
path = "ledger.db"

[keys]
site_code_key_file = "site-code.key"

[api]
socket = "kiosk.sock"

[[bus]]
name = "sim"
kind = "simulated"

[[board]]
bus = "sim"
unit = 1
channels = 4

[[locker]]
label = "A-1"
size = "S"
bus = "sim"
unit = 1
channel = 0

[[locker]]
label = "A-2"
size = "S"
bus = "sim"
unit = 1
channel = 1
column = 1
row = 1

[[locker]]
label = "B-1"
size = "L"
bus = "sim"
unit = 1
channel = 2
rows = 3

[[locker]]
label = "B-3"
size = "S"
bus = "sim"
unit = 1
channel = 3
"""


def test_two_lockers_in_one_cell_of_the_picture_are_errors_on_their_lines(tmp_path):
    """A-2 put where A-1 is (by its label); B-3 inside tall B-1 (rows 1 to 3 of column B)."""
    path = write(tmp_path, PLACED)
    done = check("config", "check", str(path))
    assert done.returncode == 78, done.stdout
    assert done.stderr.splitlines() == [
        f"{path}:36: locker[2].row (A-2): column 1, row 1 is already taken by locker[1] (A-1); "
        "give it a free column and row",
        f"{path}:47: locker[4].label (B-3): column 2, row 3 is already taken by locker[3] (B-1); "
        "give it a free column and row",
    ]
    fixed = PLACED.replace("column = 1\nrow = 1", "column = 1\nrow = 2").replace(
        'label = "B-3"', 'label = "B-4"'
    )
    path.write_text(fixed)
    ok = check("config", "check", str(path))
    assert ok.returncode == 0, ok.stderr
