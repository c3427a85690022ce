"""A real kiosk start: kiosk-web.service serves the screen on 127.0.0.1, kiosk-browser.service
shows it in Chromium's kiosk mode under cage, each as its own user, never the daemon's.

`systemd-analyze verify` of both runs with every other unit in test_units.py;
here: what they run, as whom, what they may reach, their exposure scores, the
PAM file and the account sysusers makes, and that docs/ui.md says how to set
the screen up.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from test_units import (
    INSTALLED_KIOSK,
    ROOT,
    UNITS,
    _colon_table,
    _tool,
    one,
    paths,
    read_unit,
    words,
)
from test_units import unit_dir as unit_dir  # the units with real ExecStart binaries

UI_DOC = ROOT / "docs" / "ui.md"
#: Measured with systemd 252: kiosk-web 1.3, kiosk-browser 6.3 (Chromium's own
#: sandbox needs user namespaces and its capabilities inside them, and its JIT
#: writable+executable memory: docs/ui.md).
MAX_EXPOSURE = {"kiosk-web.service": 1.6, "kiosk-browser.service": 6.6}
S, U = "Service", "Unit"


@pytest.fixture(scope="module")
def web():  # type: ignore[no-untyped-def]
    return read_unit("kiosk-web.service")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    return read_unit("kiosk-browser.service")


def _url_port(web) -> str:  # type: ignore[no-untyped-def]
    argv = shlex.split(one(web, S, "ExecStart"))
    return argv[argv.index("--port") + 1]


def test_web_serves_the_keypad_on_loopback_only(web):
    argv = shlex.split(one(web, S, "ExecStart"))
    assert argv[:4] == [INSTALLED_KIOSK, "--config", "/etc/kiosk/kiosk.toml", "ui"]
    assert "--web" in argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert words(web, S, "IPAddressAllow") == ["localhost"]
    assert words(web, S, "IPAddressDeny") == ["any"]
    assert one(web, S, "Restart") == "always"
    assert "kiosk.service" in words(web, U, "After")
    assert "kiosk.service" not in words(web, U, "Requires") + words(web, U, "BindsTo")


def test_web_is_the_public_keypad_user_and_cannot_see_the_ledger_or_keys(web):
    daemon = read_unit("kiosk.service")
    assert one(web, S, "User") == "kiosk-ui"
    assert one(web, S, "User") not in ("root", one(daemon, S, "User"))
    assert words(web, S, "SupplementaryGroups") == [one(daemon, S, "Group")]  # the socket only
    assert "/var/lib/kiosk" in paths(web, S, "InaccessiblePaths")
    assert paths(web, S, "TemporaryFileSystem") == ["/etc/kiosk"]
    assert paths(web, S, "BindReadOnlyPaths") == ["/etc/kiosk/kiosk.toml"]
    assert one(web, S, "NoNewPrivileges") == "yes"


def test_browser_shows_the_web_screen_in_chromium_kiosk_mode_under_cage(browser, web):
    command = one(browser, S, "ExecStart")
    assert command.startswith("/usr/bin/cage ")
    assert "chromium" in command and "--kiosk" in command
    assert f"http://127.0.0.1:{_url_port(web)}/" in command
    assert "kiosk-web.service" in words(browser, U, "Wants")
    assert "kiosk-web.service" in words(browser, U, "After")
    # One screen at a time: the console keypad on tty1 gives way.
    assert "kiosk-ui.service" in words(browser, U, "Conflicts")
    tty = one(browser, S, "TTYPath")
    assert f"getty@{tty.removeprefix('/dev/')}.service" in words(browser, U, "Conflicts")


def test_browser_runs_as_its_own_user_with_no_way_to_the_daemon(browser, web):
    daemon = read_unit("kiosk.service")
    user = one(browser, S, "User")
    assert user == "kiosk-browser"
    assert user not in ("root", one(daemon, S, "User"), one(web, S, "User"))
    assert one(daemon, S, "Group") not in words(browser, S, "SupplementaryGroups")
    hidden = paths(browser, S, "InaccessiblePaths")
    for folder in ("/etc/kiosk", "/var/lib/kiosk", "/var/backups/kiosk", "/run/kiosk"):
        assert folder in hidden, f"kiosk-browser.service can see {folder}"
    assert words(browser, S, "IPAddressAllow") == ["localhost"]
    assert words(browser, S, "IPAddressDeny") == ["any"]


def test_browser_opens_a_logind_session_through_its_own_pam_file(browser):
    name = one(browser, S, "PAMName")
    pam = UNITS / f"{name}.pam"
    assert pam.is_file(), f"PAMName={name}: no systemd/{name}.pam to install as /etc/pam.d/{name}"
    rules = [line.split() for line in pam.read_text().splitlines() if line and line[0] != "#"]
    assert ["session", "required", "pam_systemd.so"] in rules


def test_sysusers_makes_the_browser_user_with_its_profile_home(browser, tmp_path):
    (tmp_path / "etc").mkdir()
    run = subprocess.run(
        [_tool("systemd-sysusers"), f"--root={tmp_path}", str(UNITS / "kiosk.sysusers")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    users, groups = _colon_table(tmp_path / "etc/passwd"), _colon_table(tmp_path / "etc/group")
    home = f"/var/lib/{one(browser, S, 'StateDirectory')}"
    assert users["kiosk-browser"][5] == home
    assert users["kiosk-browser"][6] == "/usr/sbin/nologin"
    assert "kiosk-browser" not in groups["kiosk"][3].split(",")


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_screen_units_exposure_stays_within_bounds(name, unit_dir):
    run = subprocess.run(
        [
            _tool("systemd-analyze"),
            "security",
            "--offline=true",
            "--no-pager",
            str(unit_dir / name),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit_dir,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", run.stdout)
    assert found, run.stdout + run.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE[name], run.stdout


def test_ui_doc_says_how_to_set_up_the_screen():
    text = UI_DOC.read_text(encoding="utf-8")
    start = text.index("## A real kiosk start")
    section = text[start : text.find("\n## ", start + 1)]
    for needed in ("kiosk-web.service", "kiosk-browser.service", "apt-get install"):
        assert needed in section, f"docs/ui.md, A real kiosk start: no {needed}"
    for topic in ("### Touch panel", "### Screen blanking", "### Rotation"):
        assert topic in section, f"docs/ui.md, A real kiosk start: no {topic!r} part"
