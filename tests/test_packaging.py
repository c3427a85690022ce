"""What the wheels hold: the device's has no cloud tool and no signing code; the tool's has both.

Both wheels are built for real (setuptools, offline, no build isolation) from a
copy of this checkout, so the build's scratch files never land in the tree.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300
#: What only a signer's code says (the device verifies with the public key only).
SIGNING = re.compile(rb"Ed25519PrivateKey|load_pem_private_key|jwt\.encode|\bdef sign\(")
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", ".ruff_cache"
)


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def entry_points(wheel: zipfile.ZipFile) -> dict[str, str]:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(name).decode())
    return dict(parser["console_scripts"])


def requires(wheel: zipfile.ZipFile) -> list[str]:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return re.findall(r"^Requires-Dist: (.+)$", wheel.read(name).decode(), re.MULTILINE)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("checkout") / "locker-kiosk"
    shutil.copytree(ROOT, copy, ignore=_SKIP)
    return copy


@pytest.fixture(scope="module")
def device_wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return build_wheel(checkout, tmp_path_factory.mktemp("device-wheel"))


@pytest.fixture(scope="module")
def cloud_wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return build_wheel(checkout / "cloudtool", tmp_path_factory.mktemp("cloud-wheel"))


def test_the_device_wheel_has_the_device_and_not_the_cloud_tool(device_wheel):
    tops = {name.split("/")[0] for name in device_wheel.namelist()}
    assert {"kiosk", "firmware_bridge"} <= tops
    assert "kiosk/cloud/tokens.py" in device_wheel.namelist()  # verification stays
    assert not [t for t in tops if t.startswith(("kiosk_cloud", "cloudtool"))], sorted(tops)
    assert entry_points(device_wheel) == {"kiosk": "kiosk.cli:main"}


def test_the_device_wheel_holds_no_signing_code(device_wheel):
    signing = sorted(
        name
        for name in device_wheel.namelist()
        if name.endswith(".py") and SIGNING.search(device_wheel.read(name))
    )
    assert signing == []


def test_the_cloud_wheel_is_the_cloud_tool_beside_the_device(cloud_wheel):
    tops = {name.split("/")[0] for name in cloud_wheel.namelist() if "dist-info" not in name}
    assert tops == {"kiosk_cloud"}
    assert "kiosk_cloud/signing.py" in cloud_wheel.namelist()
    assert entry_points(cloud_wheel) == {"kiosk-cloud": "kiosk_cloud.cli:main"}
    assert "locker-kiosk" in requires(cloud_wheel)
