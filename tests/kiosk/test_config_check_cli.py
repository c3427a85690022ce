"""`kiosk config check [FILE]` as a real command: every error at once, `FILE:LINE: key: reason`."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

CLI_TIMEOUT_S = 60.0

#: [site], [ledger], [keys] and [api] of a bank that loads: what every config here starts with.
HEAD = """\
[site]
id = "s1"

[ledger]
path = "ledger.db"

[keys]
site_code_key_file = "site-code.key"

[api]
socket = "kiosk.sock"
"""


def table(header: str, *lines: str) -> str:
    return "\n".join(["", header, *lines]) + "\n"


def bus(*more: str, name: str = "sim") -> str:
    return table("[[bus]]", f'name = "{name}"', 'kind = "simulated"', *more)


def board(*more: str, bus: str = "sim", channels: int | None = 4) -> str:
    count = [] if channels is None else [f"channels = {channels}"]
    return table("[[board]]", f'bus = "{bus}"', "unit = 1", *count, *more)


def locker(label: str, channel: int | None, *more: str, size: str = "S", bus: str = "sim") -> str:
    """A [[locker]] on unit 1; `channel` None leaves the key out."""
    where = [] if channel is None else [f"channel = {channel}"]
    lines = [f'label = "{label}"', f'size = "{size}"', f'bus = "{bus}"', "unit = 1", *where]
    return table("[[locker]]", *lines, *more)


def line_of(text: str, header: str, nth: int = 1, key: str | None = None) -> int:
    """The 1-based line of `key` in the `nth` table `header` ("[[locker]]") of `text`,
    or of that header itself when `key` is None (where a missing key is reported)."""
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines, 1) if line == header]
    start = starts[nth - 1]
    if key is None:
        return start
    for number, line in enumerate(lines[start:], start + 1):
        if line.startswith("["):
            break
        if line.partition("=")[0].strip() == key:
            return number
    raise AssertionError(f"no {key!r} in {header} number {nth}")


#: The first pass's errors, one of each kind: keys wrong in [site], [api] (beside a
#: multi-line string whose `channel = 5` is no key), [[bus]], [[locker]] and [policy].
MANY_ERRORS = (
    HEAD.replace('id = "s1"', 'id = "has space"\ncolour = "blue"')
    + 'note = """\nchannel = 5\n"""\n'
    + bus("poll_ms = 1")
    + board()
    + locker("A-1", 0)
    + locker("A-2", 99, size="XL")
    + locker("A-3", None)
    + table("[policy]", "pickup_days = 99")
)

#: Every key loads; only the checks across tables fail (pass 2).
CLASHES = (
    HEAD
    + bus()
    + board("pulse_ms = 900", "max_pulse_ms = 500", channels=2)
    + locker("A-1", 0)
    + locker("A-1", 0)
    + locker("C-1", 1, size="L", bus="nowhere")
)


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

    def at(header: str, nth: int, key: str | None = None) -> str:
        return f"{path}:{line_of(MANY_ERRORS, header, nth, key)}:"

    assert done.stderr.splitlines() == [
        f"{at('[site]', 1, 'id')} site.id: must be 1 to 64 characters of A-Z a-z 0-9 _ -, "
        "got 'has space'",
        f"{at('[site]', 1, 'colour')} site.colour: unknown key (did you mean 'lon'?)",
        f"{at('[api]', 1, 'note')} api.note: unknown key (did you mean 'socket'?)",
        f"{at('[[bus]]', 1, 'poll_ms')} bus[1].poll_ms: must be an integer from 10 to 10000, got 1",
        f"{at('[[locker]]', 2, 'size')} locker[2].size (A-2): must be S, M or L, got 'XL'",
        f"{at('[[locker]]', 2, 'channel')} locker[2].channel (A-2): must be an integer "
        "from 0 to 63, got 99",
        f"{at('[[locker]]', 3)} locker[3].channel (A-3): missing (required)",
        f"{at('[policy]', 1, 'pickup_days')} policy.pickup_days: must be an integer "
        "from 1 to 30, got 99",
    ]


def test_every_clash_between_tables_at_once(tmp_path):
    path = write(tmp_path, CLASHES)
    done = check("config", "check", str(path))
    assert done.returncode == 78

    def at(header: str, nth: int, key: str) -> str:
        return f"{path}:{line_of(CLASHES, header, nth, key)}:"

    assert done.stderr.splitlines() == [
        f"{at('[[board]]', 1, 'pulse_ms')} board[1].pulse_ms: must not exceed max_pulse_ms "
        "(500), got 900",
        f"{at('[[locker]]', 2, 'label')} locker[2].label (A-1): duplicate label 'A-1' "
        "(also locker[1])",
        f"{at('[[locker]]', 2, 'channel')} locker[2].channel (A-1): channel 0 of bus 'sim' "
        "unit 1 is already used by locker[1] (A-1)",
        f"{at('[[locker]]', 3, 'bus')} locker[3].bus (C-1): no [[bus]] named 'nowhere'",
    ]


def test_no_file_given_checks_the_configured_one_honouring_config_and_the_environment(tmp_path):
    bad = write(tmp_path / "bad", CLASHES)
    good = write(
        tmp_path / "good",
        HEAD + bus() + board("pulse_ms = 400", "max_pulse_ms = 500", channels=2) + locker("A-1", 0),
    )
    by_option = check("--config", str(bad), "config", "check")
    assert by_option.returncode == 78
    pulse = line_of(CLASHES, "[[board]]", 1, "pulse_ms")
    assert by_option.stderr.startswith(f"{bad}:{pulse}: board[1].pulse_ms:")
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
    key_line = line_of(MANY_ERRORS, "[keys]", 1, "site_code_key_file")
    missing = f"{path}:{key_line}: keys.site_code_key_file: file not found: "
    assert f"{missing}{tmp_path / 'site-code.key'}" in done.stderr.splitlines()
    assert len(done.stderr.splitlines()) == 9
    relaxed = check("config", "check", str(path))
    assert relaxed.stderr.splitlines()[0] == (f"warning: {missing}{tmp_path / 'site-code.key'}")


#: Key errors (site.id, bus[2].poll_ms) and clashes between tables in one file.
KEYS_AND_CLASHES = (
    HEAD.replace('id = "s1"', 'id = "has space"')
    + bus()
    + bus("poll_ms = 1", name="broken")
    + board()
    + board(bus="broken", channels=None)
    + locker("A-1", 9)
    + locker("B-1", 0, bus="nowhere")
    + locker("C-1", 0, bus="broken")
)


def test_key_errors_and_clashes_between_tables_at_once(tmp_path):
    """The clashes that can still be checked are listed beside the key errors; a locker on a
    bus whose own keys were wrong (C-1 on 'broken') is not checked against it."""
    path = write(tmp_path, KEYS_AND_CLASHES)
    done = check("config", "check", str(path))
    assert done.returncode == 78

    def at(header: str, nth: int, key: str) -> str:
        return f"{path}:{line_of(KEYS_AND_CLASHES, header, nth, key)}:"

    assert done.stderr.splitlines() == [
        f"{at('[site]', 1, 'id')} site.id: must be 1 to 64 characters of A-Z a-z 0-9 _ -, "
        "got 'has space'",
        f"{at('[[bus]]', 2, 'poll_ms')} bus[2].poll_ms: must be an integer from 10 to 10000, got 1",
        f"{at('[[locker]]', 1, 'channel')} locker[1].channel (A-1): must be below the board's "
        "channels (4), got 9",
        f"{at('[[locker]]', 2, 'bus')} locker[2].bus (B-1): no [[bus]] named 'nowhere'",
    ]


#: A-2 put where A-1 is (by its label); B-3 inside tall B-1 (rows 1 to 3 of column B).
PLACED = (
    HEAD
    + bus()
    + board()
    + locker("A-1", 0)
    + locker("A-2", 1, "column = 1", "row = 1")
    + locker("B-1", 2, "rows = 3", size="L")
    + locker("B-3", 3)
)


def test_two_lockers_in_one_cell_of_the_picture_are_errors_on_their_lines(tmp_path):
    """A-2 put where A-1 is (by its label); B-3 inside tall B-1 (rows 1 to 3 of column B)."""
    path = write(tmp_path, PLACED)
    done = check("config", "check", str(path))
    assert done.returncode == 78, done.stdout
    row = line_of(PLACED, "[[locker]]", 2, "row")
    label = line_of(PLACED, "[[locker]]", 4, "label")
    assert done.stderr.splitlines() == [
        f"{path}:{row}: locker[2].row (A-2): column 1, row 1 is already taken by locker[1] "
        "(A-1); give it a free column and row",
        f"{path}:{label}: locker[4].label (B-3): column 2, row 3 is already taken by locker[3] "
        "(B-1); give it a free column and row",
    ]
    fixed = PLACED.replace("column = 1\nrow = 1", "column = 1\nrow = 2").replace(
        'label = "B-3"', 'label = "B-4"'
    )
    path.write_text(fixed)
    ok = check("config", "check", str(path))
    assert ok.returncode == 0, ok.stderr
