#!/usr/bin/env bash
# install.sh: install locker-kiosk as an appliance on Debian 12 or Raspberry Pi OS (bookworm).
#
#   sudo ./install.sh                  install, or upgrade in place, and start
#   sudo ./install.sh --wheels DIR     the same, offline, from a folder of wheels
#   ./install.sh --root DIR            into a staging root: no root rights, no systemd
#   sudo ./install.sh --uninstall      remove the program and units; keep /etc/kiosk,
#                                      the ledger and its backups
#
# What goes where, and why: docs/operations.md, "Install". Exit codes: 0 done,
# 1 a step failed (one line says which; running it again is safe), 2 bad usage.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=/opt/kiosk
VENV=$PREFIX/venv
ETC=/etc/kiosk
UNIT_DIR=/etc/systemd/system
BACKUPS=/var/backups/kiosk
DEFAULT_LEDGER=/var/lib/kiosk/ledger.db
UNITS=(kiosk.service kiosk-ui.service kiosk-web.service kiosk-browser.service
    kiosk-backup.service kiosk-backup.timer)
SCREENS=(kiosk-browser.service kiosk-web.service kiosk-ui.service)

ROOT=""
WHEELS=""
UNINSTALL=0

say() { echo "install.sh: $*"; }
die() {
    echo "install.sh: error: $*" >&2
    exit 1
}
usage() {
    sed -n '3,8s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --root)
        [ $# -ge 2 ] && [ -n "$2" ] || usage
        ROOT=$2
        shift 2
        ;;
    --wheels)
        [ $# -ge 2 ] && [ -n "$2" ] || usage
        WHEELS=$2
        shift 2
        ;;
    --uninstall)
        UNINSTALL=1
        shift
        ;;
    -h | --help) usage ;;
    *)
        echo "install.sh: unknown option $1" >&2
        usage
        ;;
    esac
done

# A staging root holds the same tree as the target; every path below is
# written through $(R /path). Without --root it is the running system.
if [ -n "$ROOT" ]; then
    mkdir -p -- "$ROOT"
    ROOT=$(cd -- "$ROOT" && pwd)
    [ "$ROOT" != / ] || die "--root /: leave --root out to install on this system"
fi
R() { printf '%s%s' "$ROOT" "$1"; }
staged() { [ -n "$ROOT" ]; }
# systemd as PID 1 (sd_booted(3)): not so in a container or a chroot, where
# the units are installed and enabled but nothing can be started.
systemd_running() { ! staged && [ -d /run/systemd/system ]; }
# udev running: it has its control socket (not in a container).
udev_running() { ! staged && command -v udevadm >/dev/null && [ -S /run/udev/control ]; }
# A tool's own output, as lines of ours.
prefixed() { sed -u 's/^/install.sh: /'; }

if ! staged && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 (or --root DIR to install into a staging root without root rights)"
fi
if [ -n "$WHEELS" ]; then
    [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
    WHEELS=$(cd -- "$WHEELS" && pwd)
fi

trap 'echo "install.sh: error: the step at line $LINENO failed (see above); fix it and run install.sh again" >&2' ERR
# An upgrade stops the bank first; if a later step fails, start again what was
# running, so a failed upgrade does not leave the bank dark.
STOPPED=()
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ ${#STOPPED[@]} -gt 0 ]; then
        say "starting again what was stopped: ${STOPPED[*]}"
        systemctl start "${STOPPED[@]}" || true
    fi
}
trap on_exit EXIT

# --- helpers ---------------------------------------------------------------------------

unit_enabled() { systemctl is-enabled --quiet "$1" 2>/dev/null; }

stop_units() {
    systemd_running || return 0
    local unit
    for unit in "${SCREENS[@]}" kiosk-backup.timer kiosk.service; do
        if systemctl is-active --quiet "$unit" 2>/dev/null; then
            systemctl stop "$unit"
            STOPPED=("$unit" ${STOPPED[@]+"${STOPPED[@]}"})
            say "stopped $unit"
        fi
    done
}

ledger_path() {
    # ledger.path from the config, as the daemon reads it (relative to the config's folder).
    local config
    config=$(R $ETC/kiosk.toml)
    if [ -f "$config" ]; then
        python3 - "$config" "$DEFAULT_LEDGER" <<'PY'
import os, sys, tomllib
config, default = sys.argv[1], sys.argv[2]
try:
    with open(config, "rb") as fh:
        path = tomllib.load(fh).get("ledger", {}).get("path", default)
except (OSError, tomllib.TOMLDecodeError):
    path = default
print(os.path.join("/etc/kiosk", path))
PY
    else
        echo "$DEFAULT_LEDGER"
    fi
}

backup_ledger() {
    # A consistent copy (SQLite's backup API, WAL included) before anything changes.
    local ledger dest
    ledger=$(R "$(ledger_path)")
    [ -f "$ledger" ] || return 0
    mkdir -p -m 0750 -- "$(R $BACKUPS)"
    dest=$(R $BACKUPS)/before-upgrade-$(date +%Y-%m-%d-%H%M%S).db
    python3 - "$ledger" "$dest" <<'PY' || exit 1
import os, sqlite3, sys
from pathlib import Path
source, dest = sys.argv[1], sys.argv[2]
os.umask(0o027)
try:
    src = sqlite3.connect(Path(source).absolute().as_uri() + "?mode=ro", uri=True)
    out = sqlite3.connect(dest)
    with out:
        src.backup(out)
    out.close()
    src.close()
except sqlite3.Error as exc:
    Path(dest).unlink(missing_ok=True)
    sys.exit(
        f"install.sh: error: cannot back up the ledger {source} ({exc}); nothing was "
        "upgraded. Restore it from a backup (docs/operations.md), then run install.sh again"
    )
os.chmod(dest, 0o640)
PY
    if ! staged; then
        chown --reference="$ledger" -- "$dest"
        # Opening the ledger as root may have made its -wal/-shm: give them back.
        local side
        for side in "$ledger-wal" "$ledger-shm"; do
            if [ -e "$side" ]; then
                chown --reference="$ledger" -- "$side"
            fi
        done
    fi
    say "backed up the ledger to ${dest#"$ROOT"}"
}

install_file() { # MODE SOURCE TARGET
    install -D -m "$1" -- "$2" "$(R "$3")"
}

# --- uninstall ---------------------------------------------------------------------------

if [ "$UNINSTALL" -eq 1 ]; then
    if ! staged; then
        now=()
        systemd_running && now=(--now)
        for unit in "${UNITS[@]}"; do
            systemctl disable --quiet ${now[@]+"${now[@]}"} "$unit" 2>/dev/null || true
        done
    fi
    for unit in "${UNITS[@]}"; do
        rm -f -- "$(R $UNIT_DIR/"$unit")"
    done
    rm -rf -- "$(R $PREFIX)"
    if [ -L "$(R /usr/local/bin/kiosk)" ]; then
        rm -f -- "$(R /usr/local/bin/kiosk)"
    fi
    rm -f -- "$(R /etc/udev/rules.d/99-kiosk-rs485.rules)" "$(R /etc/udev/rules.d/99-kiosk-gpio.rules)" \
        "$(R /etc/pam.d/kiosk-browser)" "$(R /etc/sysusers.d/kiosk.conf)" "$(R /etc/tmpfiles.d/kiosk.conf)"
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed "${UNITS[@]}" 2>/dev/null || true
    fi
    if udev_running; then
        udevadm control --reload || true
    fi
    if ! staged; then
        # Give tty1 its login prompt back (the console screen had taken it).
        systemctl enable --quiet getty@tty1.service 2>/dev/null || true
    fi
    say "removed $PREFIX, the units and the udev rules"
    say "kept $ETC (config and keys), $(dirname "$(ledger_path)") (the ledger), $BACKUPS and the users kiosk, kiosk-ui, kiosk-browser"
    exit 0
fi

# --- install or upgrade ------------------------------------------------------------------

command -v python3 >/dev/null ||
    die "python3 is missing: apt-get install python3 python3-venv, then run install.sh again"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "Python 3.11 or newer is needed as python3 (Debian 12 and Raspberry Pi OS bookworm have it)"
if ! staged; then
    VERSION_CODENAME=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true
    PRETTY_NAME=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}") || true
    [ "$VERSION_CODENAME" = bookworm ] ||
        say "note: made for Debian 12 / Raspberry Pi OS bookworm; this is ${PRETTY_NAME:-unknown}"
    for tool in systemctl systemd-sysusers systemd-tmpfiles; do
        command -v "$tool" >/dev/null ||
            die "$tool is missing: this installer needs systemd (apt-get install systemd)"
    done
fi
if ! python3 -c 'import ensurepip, venv; ensurepip.version()' 2>/dev/null; then
    if staged || [ -n "$WHEELS" ] || ! command -v apt-get >/dev/null; then
        die "python3's venv module is missing: apt-get install python3-venv, then run install.sh again"
    fi
    say "installing python3-venv"
    apt-get install -y -qq python3-venv </dev/null ||
        die "apt-get could not install python3-venv (above): apt-get update && apt-get install python3-venv, then run install.sh again"
    python3 -c 'import ensurepip, venv; ensurepip.version()' 2>/dev/null ||
        die "python3's venv module is still missing after apt-get: apt-get install python3-venv, then run install.sh again"
fi
if ! staged; then
    # The venv links to this interpreter and the service user kiosk runs it:
    # one under /root (pyenv, conda) is closed to it.
    python3 - <<'PY' || exit 1
import os, stat, sys
exe = path = os.path.realpath(sys.executable)
while path != "/":
    if not os.stat(path).st_mode & stat.S_IXOTH:
        sys.exit(
            f"install.sh: error: python3 is {exe}, which other users cannot run ({path} is closed to "
            "them), so the service user kiosk could not: run it with the system's python3 "
            "(sudo ./install.sh finds /usr/bin/python3)"
        )
    path = os.path.dirname(path)
PY
fi
if ! staged && ! systemd_running; then
    say "note: systemd is not running here (a container or a chroot): the units are installed and enabled but not started"
fi

UPGRADE=0
if [ -x "$(R $VENV)/bin/kiosk" ]; then
    UPGRADE=1
    say "upgrading the installation in $(R $PREFIX)"
    stop_units
    backup_ledger
fi

# Users and folders: sysusers.d and tmpfiles.d (the users kiosk, kiosk-ui,
# kiosk-browser; /var/lib/kiosk, /run/kiosk, /var/backups/kiosk).
install_file 0644 "$SRC/systemd/kiosk.sysusers" /etc/sysusers.d/kiosk.conf
install_file 0644 "$SRC/systemd/kiosk.tmpfiles" /etc/tmpfiles.d/kiosk.conf
if ! staged; then
    systemd-sysusers /etc/sysusers.d/kiosk.conf 2>&1 | prefixed ||
        die "systemd-sysusers could not make the users kiosk, kiosk-ui, kiosk-browser (above); fix that and run install.sh again"
    systemd-tmpfiles --create /etc/tmpfiles.d/kiosk.conf 2>&1 | prefixed ||
        die "systemd-tmpfiles could not make /var/lib/kiosk, /run/kiosk, /var/backups/kiosk (above); fix that and run install.sh again"
fi

# The program: its own virtual environment (made again if a first run was cut
# short before it had pip).
if ! "$(R $VENV)/bin/python" -c 'import pip' 2>/dev/null; then
    mkdir -p -- "$(R $PREFIX)"
    python3 -m venv --clear -- "$(R $VENV)"
fi
pip=("$(R $VENV)/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade)
if [ -n "$WHEELS" ]; then
    "${pip[@]}" --no-index --find-links "$WHEELS" locker-kiosk ||
        die "pip could not install locker-kiosk from $WHEELS (above): the folder must hold the wheels of every dependency too (docs/operations.md, section 2)"
else
    "${pip[@]}" "$SRC" ||
        die "pip could not install $SRC (above): no internet? Use --wheels DIR (docs/operations.md, section 2)"
fi
if staged; then
    # Scripts and activate files name the venv by its staging path; on the target it is $VENV.
    for file in "$(R $VENV)"/bin/* "$(R $VENV)/pyvenv.cfg"; do
        if [ -f "$file" ] && [ ! -L "$file" ] && grep -Iq -- "$ROOT$VENV" "$file"; then
            sed -i "s#$ROOT$VENV#$VENV#g" -- "$file"
        fi
    done
fi
chmod -R go-w -- "$(R $PREFIX)"
mkdir -p -- "$(R /usr/local/bin)"
ln -sfn -- "$VENV/bin/kiosk" "$(R /usr/local/bin/kiosk)"
for doc in "$SRC"/docs/*.md; do
    install_file 0644 "$doc" "$PREFIX/docs/$(basename "$doc")"
done
say "installed $("$(R $VENV)/bin/python" -m kiosk --version 2>/dev/null || echo locker-kiosk) in $VENV"

# /etc/kiosk: a starting config and a fresh site key, never overwritten.
mkdir -p -- "$(R $ETC)"
chmod 0755 -- "$(R $ETC)"
if [ -e "$(R $ETC/kiosk.toml)" ]; then
    say "kept $ETC/kiosk.toml"
else
    install_file 0644 "$SRC/config/kiosk.toml" $ETC/kiosk.toml
    say "wrote $ETC/kiosk.toml: edit it for this bank (docs/operations.md, section 3)"
fi
if [ -e "$(R $ETC/site-code.key)" ]; then
    say "kept $ETC/site-code.key"
else
    key=$(R $ETC/site-code.key)
    (
        umask 077
        "$(R $VENV)/bin/python" -c 'import sys
from kiosk.domain.codes import new_code_key_text
sys.stdout.write(new_code_key_text())' >"$key.new"
    )
    chmod 0640 -- "$key.new"
    staged || chown root:kiosk -- "$key.new"
    mv -- "$key.new" "$key"
    say "made a new site key $ETC/site-code.key (a bank with a cloud gets its key at enrollment instead)"
fi

# udev: the RS-485 adapter's name; the GPIO nodes where Raspberry Pi OS does not do it.
install_file 0644 "$SRC/config/udev/99-kiosk-rs485.rules" /etc/udev/rules.d/99-kiosk-rs485.rules
if [ ! -e "$(R /etc/udev/rules.d/99-com.rules)" ]; then
    install_file 0644 "$SRC/config/udev/99-kiosk-gpio.rules" /etc/udev/rules.d/99-kiosk-gpio.rules
fi
if udev_running; then
    udevadm control --reload || true
    udevadm trigger --subsystem-match=tty --subsystem-match=usb-serial --subsystem-match=gpio || true
elif ! staged; then
    say "note: udev is not running here: the rules apply from the next boot"
fi

# The units, and the PAM service of the browser screen's login session.
for unit in "${UNITS[@]}"; do
    install_file 0644 "$SRC/systemd/$unit" "$UNIT_DIR/$unit"
done
install_file 0644 "$SRC/systemd/kiosk-browser.pam" /etc/pam.d/kiosk-browser

if staged; then
    say "staged in $ROOT: no users made, nothing enabled or started, no kiosk doctor"
    exit 0
fi

systemd_running && systemctl daemon-reload
enable=(kiosk.service kiosk-backup.timer)
# The screen: kept as the operator left it on an upgrade; on a first install
# the browser pair where cage and Chromium are installed, else the console.
screens=()
if [ "$UPGRADE" -eq 1 ]; then
    for unit in "${SCREENS[@]}"; do
        unit_enabled "$unit" && screens+=("$unit")
    done
elif command -v cage >/dev/null && { command -v chromium || command -v chromium-browser; } >/dev/null; then
    screens=(kiosk-web.service kiosk-browser.service)
else
    systemctl disable --quiet getty@tty1.service 2>/dev/null || true
    screens=(kiosk-ui.service)
fi
# Enabling is links in /etc/systemd/system: it works without a running systemd too.
systemctl enable --quiet "${enable[@]}" ${screens[@]+"${screens[@]}"} ||
    die "systemctl could not enable ${enable[*]} ${screens[*]:-} (above); run install.sh again"
say "enabled ${enable[*]} ${screens[*]:-(no screen)}"
if systemd_running; then
    if systemctl start kiosk.service; then
        say "kiosk.service is running"
    else
        say "kiosk.service did not start: journalctl -u kiosk -n 5 says why (edit $ETC/kiosk.toml: docs/operations.md)"
    fi
    systemctl start kiosk-backup.timer ${screens[@]+"${screens[@]}"} ||
        say "a screen did not start: journalctl -u ${screens[*]:-kiosk-ui} -n 20"
else
    say "systemd is not running here: nothing started; the units start at the next boot under systemd"
fi

if "$VENV/bin/kiosk" doctor --help >/dev/null 2>&1; then
    say "running kiosk doctor"
    "$VENV/bin/kiosk" --config "$ETC/kiosk.toml" doctor ||
        say "kiosk doctor found problems (above): fix them and run it again"
else
    say "kiosk doctor is not in this version: skipped (check with: sudo kiosk status)"
fi
