"""`kiosk config check`: every error of a config file at once, each with its line.

An error reads `FILE:LINE: key: reason`. Positions are 1-based, as people
count (`locker[1]` is the first `[[locker]]`; the loader's own errors, which
`kiosk run` prints, count from 0), and a locker's key carries its label. LINE
is the key's line, else that of the table it belongs in (a missing key); an
error with no place in the file (a missing table, a file that cannot be
read) has none: `FILE: key: reason`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config.lines import key_lines, line_of
from kiosk.config.loader import FILE_KEY, ConfigErrors, load_config
from kiosk.config.schema import SECTIONS, FilePath
from kiosk.domain.errors import ConfigError

_POSITION = re.compile(r"\b(bus|board|locker|relay_pins|sensor_pins)\[(\d+)\]")
_LOCKER = re.compile(r"locker\[(\d+)\]")
_TOML_LINE = re.compile(r"\(at line (\d+)")


def one_based(text: str) -> str:
    """`locker[0].channel` -> `locker[1].channel`, wherever a position is named."""
    return _POSITION.sub(lambda m: f"{m.group(1)}[{int(m.group(2)) + 1}]", text)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int | None
    key: str  # as the operator reads it: 1-based, with the locker's label
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key}: {self.reason}"


@dataclass(frozen=True)
class Report:
    errors: list[Finding]
    warnings: list[Finding]


class _Places:
    """Lines and locker labels of one file's text (empty for a file that cannot be read)."""

    def __init__(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
            data: dict[str, Any] = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            text, data = "", {}
        self.lines = key_lines(text)
        self.data = data
        lockers = data.get("locker")
        self.lockers = lockers if isinstance(lockers, list) else []

    def referenced(self, base: Path) -> list[tuple[str, Path]]:
        """(key, file) of every file the daemon must find, read from the text as it stands.

        From the text, not the loaded config: a file that also has other
        errors still gets its missing key files reported.
        """
        out = []
        for section in SECTIONS:
            value = self.data.get(section.name)
            tables = enumerate(value) if isinstance(value, list) else [(None, value)]
            for index, table in tables:
                if not isinstance(table, dict):
                    continue
                prefix = section.name if index is None else f"{section.name}[{index}]"
                for key in section.keys:
                    name = table.get(key.name)
                    wanted = isinstance(key.check, FilePath) and key.check.must_exist
                    if wanted and isinstance(name, str) and name.strip() and "\0" not in name:
                        out.append((f"{prefix}.{key.name}", base / name))
        return out

    def finding(self, error: ConfigError) -> Finding:
        if error.key == FILE_KEY:
            found = _TOML_LINE.search(error.reason)
            line = int(found.group(1)) if found else None
            return Finding(error.file, line, error.key, error.reason)
        return Finding(
            error.file,
            line_of(self.lines, error.key),
            one_based(error.key) + self.label(error.key),
            one_based(error.reason),
        )

    def label(self, key: str) -> str:
        found = _LOCKER.match(key)
        if found is None or int(found.group(1)) >= len(self.lockers):
            return ""
        table = self.lockers[int(found.group(1))]
        label = table.get("label") if isinstance(table, dict) else None
        return f" ({label})" if isinstance(label, str) and label else ""


def diagnose(path: str | os.PathLike[str], strict: bool = False) -> Report:
    """Every error of the file (and, unless `strict`, missing key files as warnings)."""
    places = _Places(Path(path))
    errors: list[ConfigError] = []
    try:
        load_config(path)
    except ConfigErrors as exc:
        errors = exc.errors
    except ConfigError as exc:
        errors = [exc]
    missing = []
    for key, file in places.referenced(Path(path).absolute().parent):
        if not file.is_file():
            reason = f"{'not a file' if file.exists() else 'file not found'}: {file}"
            missing.append(ConfigError(str(path), key, reason))
    if strict:
        errors, missing = errors + missing, []
    found = sorted((places.finding(e) for e in errors), key=lambda f: f.line or 0)
    return Report(found, [places.finding(e) for e in missing])
