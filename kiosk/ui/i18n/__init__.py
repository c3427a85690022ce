"""Message catalogues of the keypad screen: every word a person reads comes from here.

One TOML file per language (`en.toml`, `de.toml`) beside this module, nested
tables flattened to dotted keys (`open.courier`). `t(key, **fmt)` formats the
current language's text; a key missing from a catalogue falls back to English
(a test keeps every catalogue complete). The daemon's error messages are
English, so `error_text` maps its stable error codes to catalogue texts.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "de")
DEFAULT = "en"

_current = {"lang": DEFAULT}

#: Error codes the keypad explains in its own words; anything else is `error.unknown`.
KNOWN_ERRORS = (
    "invalid_code", "locked_out", "no_locker_available", "door_jammed", "code_expired",
    "not_delivered", "site_locked", "locker_out_of_service", "hardware_error", "not_allowed",
    "invalid_state", "locker_not_empty", "bad_request", "not_found", "unreachable",
    "door_state_unknown",
)  # fmt: skip


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every text of `lang`, by dotted key."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for language {lang!r}; have {', '.join(LANGUAGES)}")
    text = resources.files(__name__).joinpath(f"{lang}.toml").read_text(encoding="utf-8")
    return _flatten(tomllib.loads(text))


def set_language(lang: str) -> None:
    catalogue(lang)  # refuse an unknown language before switching
    _current["lang"] = lang


def language() -> str:
    return _current["lang"]


def next_language(lang: str) -> str:
    return LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)]


def t(key: str, **fmt: Any) -> str:
    """The current language's text for `key`, formatted with `fmt`."""
    text = catalogue(language()).get(key)
    if text is None:
        text = catalogue(DEFAULT).get(key, key)
    return text.format(**fmt) if fmt else text


def plural(key: str, count: int, **fmt: Any) -> str:
    """`key.one` for a count of 1, else `key.other`; both get `count` as a field too."""
    return t(f"{key}.{'one' if count == 1 else 'other'}", count=count, **fmt)


def error_text(error: dict[str, Any], pin: bool = False) -> str:
    """What to tell the person for a daemon error {"code", "message", ...}, in their language."""
    code = str(error.get("code", ""))
    if code == "invalid_code":
        left = int(error.get("tries_left", 0) or 0)
        return plural("error.wrong_pin" if pin else "error.invalid_code", left, tries_left=left)
    if code == "locked_out":
        return t("error.locked_out", seconds=int(error.get("retry_after", 0) or 0))
    if code in KNOWN_ERRORS:
        return t(f"error.{code}")
    return t("error.unknown")
