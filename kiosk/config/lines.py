"""Where each key of a TOML file is: its 1-based line, by a scan of the text.

tomllib keeps no positions, so the text is scanned again: table headers
(`[name]`, and `[[name]]` counted per name, so the third `[[locker]]` is
`locker[2]`) and `key =` lines, skipping what sits inside strings (multi-line
ones included), arrays and inline tables that span lines, and comments. It
runs only on a file tomllib has parsed, so the text is valid TOML.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=(.*)$""")
_INDEX = re.compile(r"\[\d+\]$")


class _Value:
    """How far a value has got: an open string (its quote) and the depth of [ and {."""

    def __init__(self) -> None:
        self.quote = ""
        self.depth = 0

    @property
    def done(self) -> bool:
        return not self.quote and self.depth == 0

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.quote:
                if self.quote in ('"', '"""') and text[i] == "\\":
                    i += 2
                    continue
                if text.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = ""
                    continue
                i += 1
                continue
            char = text[i]
            if char == "#":
                return
            if char in "\"'":
                triple = char * 3
                self.quote = triple if text.startswith(triple, i) else char
                i += len(self.quote)
                continue
            if char in "[{":
                self.depth += 1
            elif char in "]}":
                self.depth -= 1
            i += 1
        if self.quote in ('"', "'"):  # a one-line string cannot go on to the next line
            self.quote = ""


def _unquote(key: str) -> str:
    return key[1:-1] if key[:1] in "\"'" else key


def key_lines(text: str) -> dict[str, int]:
    """'site' -> line of [site], 'locker[2].channel' -> line of that `channel =`, and so on."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    prefix = ""
    value = _Value()
    for number, line in enumerate(text.splitlines(), 1):
        if not value.done:
            value.feed(line)
            continue
        if header := _HEADER.match(line):
            name = ".".join(_unquote(p.strip()) for p in header.group(2).split("."))
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                name = f"{name}[{index}]"
            prefix = name
            lines.setdefault(name, number)
        elif key := _KEY.match(line):
            name = ".".join(_unquote(p.strip()) for p in key.group(1).split("."))
            lines.setdefault(f"{prefix}.{name}" if prefix else name, number)
            value.feed(key.group(2))
    return lines


def line_of(lines: dict[str, int], key: str) -> int | None:
    """The line of `key`, else of the nearest table or key that holds it; None if none does."""
    while key:
        if key in lines:
            return lines[key]
        if _INDEX.search(key):
            key = _INDEX.sub("", key)
        elif "." in key:
            key = key.rsplit(".", 1)[0]
        else:
            break
    return None
