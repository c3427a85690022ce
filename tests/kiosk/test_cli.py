"""The `kiosk` command line, run for real: in-process through `kiosk.cli.main`, and as a process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import __version__
from kiosk.cli import main
from kiosk.domain.codes import new_code_key_text

BIN = Path(sys.executable).parent
TIMEOUT_S = 60

GOOD_CONFIG = """\
[site]
id = "cli-test"

[ledger]
path = "ledger.db"

[keys]
site_code_key_file = "site-code.key"

[api]
socket = "kiosk.sock"

[[bus]]
name = "pi"
kind = "gpio"
relay_pins = [5, 6]
sensor_pins = [17, 27]
pin_factory = "mock"

[[board]]
bus = "pi"
unit = 1
profile = "gpio"
channels = 2

[[locker]]
label = "A-1"
size = "S"
bus = "pi"
unit = 1
channel = 0

[[locker]]
label = "A-2"
size = "M"
bus = "pi"
unit = 1
channel = 1
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`kiosk ARGV...` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_config(directory: Path, text: str = GOOD_CONFIG, key: bool = True) -> Path:
    """A config file in `directory`; with `key`, its site code key file exists too."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    if key:
        (directory / "site-code.key").write_text(new_code_key_text(), encoding="ascii")
    return path


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with a real audit chain: the headless demo's, made once through the CLI."""
    state = tmp_path_factory.mktemp("demo")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["demo", "--headless", "--state-dir", str(state)])
    assert code == 0, out.getvalue()
    return state / "ledger.db"


@pytest.fixture
def ledger_copy(demo_ledger: Path, tmp_path: Path) -> Path:
    """A private copy of the demo ledger, for a test to tamper with."""
    copy = tmp_path / "copy" / "ledger.db"
    copy.parent.mkdir()
    shutil.copy(demo_ledger, copy)
    return copy


def tamper(path: Path, *statements: str) -> None:
    """Edit a ledger file with plain sqlite3, as someone covering their tracks would."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            for sql in statements:
                conn.execute(sql)
    finally:
        conn.close()


def audit_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


# --- config check -------------------------------------------------------------


def test_config_check_good_file(capsys, tmp_path):
    path = write_config(tmp_path)
    code, out, err = run(capsys, "config", "check", str(path))
    assert code == 0
    assert out.strip() == f"{path}: ok"
    assert err == ""


def test_config_check_unknown_key_names_file_key_and_reason(capsys, tmp_path):
    path = write_config(tmp_path, GOOD_CONFIG.replace('id = "cli-test"', 'id = "x"\ncolour = 1'))
    code, out, err = run(capsys, "config", "check", str(path))
    assert code == 78
    assert "ok" not in out
    assert err == f"{path}:3: site.colour: unknown key (did you mean 'lon'?)\n"


def test_config_check_two_lockers_on_one_channel(capsys, tmp_path):
    path = write_config(tmp_path, GOOD_CONFIG.replace("channel = 1", "channel = 0"))
    code, _, err = run(capsys, "config", "check", str(path))
    assert code == 78
    assert err.startswith(f"{path}:38: locker[2].channel (A-2): ")
    assert "already used by locker[1] (A-1)" in err


def test_config_check_missing_or_broken_file(capsys, tmp_path):
    code, _, err = run(capsys, "config", "check", str(tmp_path / "nope.toml"))
    assert code == 78
    assert err == f"{tmp_path / 'nope.toml'}: (file): file not found\n"
    broken = tmp_path / "broken.toml"
    broken.write_text("[site\nid = 1\n", encoding="utf-8")
    code, _, err = run(capsys, "config", "check", str(broken))
    assert code == 78
    assert err.startswith(f"{broken}:1: (file): not valid TOML")
    assert "Traceback" not in err


def test_config_check_missing_key_file_warns_and_strict_refuses(capsys, tmp_path):
    path = write_config(tmp_path, key=False)
    code, out, err = run(capsys, "config", "check", str(path))
    assert code == 0
    assert out.strip() == f"{path}: ok"
    assert "warning" in err and "keys.site_code_key_file" in err and "file not found" in err

    code, out, err = run(capsys, "config", "check", "--strict", str(path))
    assert code == 78
    assert "ok" not in out
    assert str(path) in err and "keys.site_code_key_file" in err and "file not found" in err

    (tmp_path / "site-code.key").write_text(new_code_key_text(), encoding="ascii")
    code, _, err = run(capsys, "config", "check", str(path), "--strict")
    assert code == 0
    assert err == ""


# --- --config before and after the subcommand -----------------------------------


@pytest.fixture
def config_with_ledger(tmp_path: Path, demo_ledger: Path) -> tuple[Path, Path]:
    """A config whose ledger.path is a copy of the demo ledger: (config, ledger)."""
    path = write_config(tmp_path / "etc")
    ledger = tmp_path / "etc" / "ledger.db"
    shutil.copy(demo_ledger, ledger)
    return path, ledger


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{cfg}", "audit", "verify"],
        ["audit", "--config", "{cfg}", "verify"],
        ["audit", "verify", "--config", "{cfg}"],
        ["--config={cfg}", "audit", "verify"],
    ],
    ids=["before", "between", "after", "equals"],
)
def test_config_option_before_or_after_the_subcommand(capsys, config_with_ledger, argv):
    config, ledger = config_with_ledger
    code, out, err = run(capsys, *(a.replace("{cfg}", str(config)) for a in argv))
    assert code == 0, err
    assert out.startswith(f"{ledger}: audit chain verified")


def test_config_option_after_wins_and_env_is_the_fallback(
    capsys, config_with_ledger, tmp_path, monkeypatch
):
    config, ledger = config_with_ledger
    missing = tmp_path / "missing.toml"
    code, out, _ = run(capsys, "--config", str(missing), "audit", "verify", "--config", str(config))
    assert code == 0 and str(ledger) in out
    monkeypatch.setenv("KIOSK_CONFIG", str(config))
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and str(ledger) in out
    code, _, err = run(capsys, "audit", "verify", "--config", str(missing))
    assert code == 1
    assert str(missing) in err and "file not found" in err


def test_config_option_accepted_by_config_check(capsys, tmp_path):
    path = write_config(tmp_path)
    for argv in (
        ["--config", str(path), "config", "check", str(path)],
        ["config", "check", str(path), "--config", str(path)],
    ):
        code, out, _ = run(capsys, *argv)
        assert code == 0 and out.strip() == f"{path}: ok"


# --- audit verify ---------------------------------------------------------------


def test_audit_verify_demo_ledger(capsys, demo_ledger):
    rows = audit_rows(demo_ledger)
    assert rows > 0
    code, out, err = run(capsys, "audit", "verify", "--db", str(demo_ledger))
    assert code == 0, err
    assert out.strip() == f"{demo_ledger}: audit chain verified, {rows} rows"


def test_audit_verify_does_not_touch_the_file(capsys, ledger_copy):
    before = ledger_copy.read_bytes()
    code, _, _ = run(capsys, "audit", "verify", "--db", str(ledger_copy))
    assert code == 0
    assert ledger_copy.read_bytes() == before


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (
            ['UPDATE audit SET detail = \'{"reason":"nothing to see"}\' WHERE id = 3'],
            "row 3 was edited",
        ),
        (["UPDATE audit SET actor = 'nobody' WHERE id = 1"], "row 1 was edited"),
        (["DELETE FROM audit WHERE id = 4"], "row 4 is missing (next is 5)"),
        (
            ["DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)"],
            "rows were removed from the end of the log",
        ),
        (
            [
                "UPDATE audit SET id = -2 WHERE id = 2",
                "UPDATE audit SET id = 2 WHERE id = 3",
                "UPDATE audit SET id = 3 WHERE id = -2",
            ],
            "row 2 does not follow row 1",
        ),
    ],
    ids=["edit-detail", "edit-actor", "delete-row", "delete-last", "swap-rows"],
)
def test_audit_verify_names_the_tampering(capsys, ledger_copy, statements, problem):
    tamper(ledger_copy, *statements)
    code, out, err = run(capsys, "audit", "verify", "--db", str(ledger_copy))
    assert code == 1
    assert out == ""
    assert "audit chain BROKEN" in err
    assert problem in err


def test_audit_verify_catches_a_rehashed_edit(capsys, ledger_copy):
    """Editing a row and fixing its own hash still breaks the link to the next row."""
    from kiosk.ledger.audit import row_hash

    conn = sqlite3.connect(ledger_copy)
    with conn:
        row = conn.execute(
            "SELECT id, ts, actor, action, subject, detail, prev_hash FROM audit WHERE id = 2"
        ).fetchone()
        forged = (*row[:5], '{"forged":true}', row[6])
        conn.execute(
            "UPDATE audit SET detail = ?, hash = ? WHERE id = 2", (forged[5], row_hash(*forged))
        )
    conn.close()
    code, _, err = run(capsys, "audit", "verify", "--db", str(ledger_copy))
    assert code == 1
    assert "row 3 does not follow row 2" in err


def test_audit_verify_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.db"
    code, _, err = run(capsys, "audit", "verify", "--db", str(missing))
    assert code == 1
    assert f"no ledger file at {missing}" in err
    assert not missing.exists()  # read-only: no empty database left behind
    code, _, err = run(capsys, "audit", "verify", "--db", str(tmp_path))
    assert code == 1 and "no ledger file" in err


@pytest.mark.parametrize(
    "content",
    [b"this is not a database\n" * 200, b"", b"SQLite format 3\x00" + b"\xff" * 1000],
    ids=["text", "empty", "bad-header"],
)
def test_audit_verify_not_a_ledger(capsys, tmp_path, content):
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    code, out, err = run(capsys, "audit", "verify", "--db", str(path))
    assert code == 1
    assert out == ""
    assert str(path) in err and "error:" in err
    assert "Traceback" not in err


def test_audit_verify_sqlite_file_without_audit_table(capsys, tmp_path):
    path = tmp_path / "other.db"
    tamper(path, "CREATE TABLE t (x)")
    code, _, err = run(capsys, "audit", "verify", "--db", str(path))
    assert code == 1
    assert "not a readable ledger" in err and "audit" in err


@pytest.mark.parametrize("name", ["a#b", "p%20q", "what?"])
def test_audit_verify_path_with_uri_characters(capsys, ledger_copy, tmp_path, name):
    """'#', '?' and '%' are part of the file name, not URI syntax."""
    odd = tmp_path / name / "ledger.db"
    odd.parent.mkdir()
    shutil.copy(ledger_copy, odd)
    code, out, err = run(capsys, "audit", "verify", "--db", str(odd))
    assert code == 0, err
    assert out.startswith(f"{odd}: audit chain verified")


# --- usage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        [],
        ["config"],
        ["audit"],
        ["audit", "frobnicate"],
        ["audit", "verify", "--db"],
        ["demo", "--no-such-option"],
        ["--config"],
    ],
    ids=lambda a: " ".join(a) or "(nothing)",
)
def test_bad_usage_exits_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "usage: kiosk" in err


def test_unknown_subcommand_is_named(capsys):
    code, _, err = run(capsys, "frobnicate")
    assert code == 2
    assert "invalid choice: 'frobnicate'" in err


def test_version_and_help_in_process(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"locker-kiosk {__version__}"
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("demo", "config", "audit"):
        assert command in out


# --- as a process ---------------------------------------------------------------


def test_python_dash_m_kiosk_version(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "--version"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"locker-kiosk {__version__}"


def test_kiosk_script_help(tmp_path):
    script = BIN / "kiosk"
    if not script.exists():
        pytest.skip(f"no kiosk script next to {sys.executable} (pip install -e . first)")
    proc = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: kiosk")
    for command in ("demo", "config", "audit", "--config", "--version"):
        assert command in proc.stdout


def test_ui_without_a_terminal_says_so_instead_of_spinning(tmp_path):
    """Textual on a stdin at end-of-file would read it in a loop at 100% CPU for ever."""
    config = write_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"}
    proc = subprocess.run(
        [str(BIN / "kiosk"), "ui", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    assert proc.returncode == 2
    assert "kiosk ui needs a terminal" in proc.stderr and "--web" in proc.stderr


def test_process_exit_codes(tmp_path):
    """What a shell script sees: 2 for bad usage, 1 for a refusal, no traceback."""
    bad = subprocess.run(
        [sys.executable, "-m", "kiosk", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    refused = subprocess.run(
        [sys.executable, "-m", "kiosk", "audit", "verify", "--db", str(junk)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
