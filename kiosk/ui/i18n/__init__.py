"""Message catalogues of the keypad screen: every word a person reads comes from here.

One TOML file per language (`en.toml`, `de.toml`) beside this module, nested
tables flattened to dotted keys (`open.courier`). `Texts(lang).t(key, **fmt)`
formats one language's text; a key missing from a catalogue falls back to English
(a test keeps every catalogue complete). The daemon's error messages are
English, so `Texts.error_text` maps its stable error codes to catalogue texts.
Which language a screen shows is its app's state (the app holds a `Texts`), not
this module's: two apps in one process each keep their own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale

LANGUAGES = ("en", "de")
DEFAULT = "en"

#: Error codes the keypad explains in its own words; anything else is `error.unknown`.
KNOWN_ERRORS = (
    "invalid_code",
    "locked_out",
    "no_locker_available",
    "door_jammed",
    "code_expired",
    "not_delivered",
    "site_locked",
    "locker_out_of_service",
    "hardware_error",
    "not_allowed",
    "invalid_state",
    "locker_not_empty",
    "bad_request",
    "not_found",
    "unreachable",
    "door_state_unknown",
)


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


@cache
def language_name(lang: str) -> str:
    """The language's name in itself ("Deutsch", "English"), from the CLDR via Babel."""
    name = Locale.parse(lang).get_display_name(lang) or lang
    return name[:1].upper() + name[1:]


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def next_language(lang: str) -> str:
    return LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)]


@dataclass(frozen=True)
class Texts:
    """Every text of one language, formatted: what an app holds as its current language."""

    lang: str = DEFAULT

    def __post_init__(self) -> None:
        catalogue(self.lang)  # refuse an unknown language here, not at the first text

    def t(self, key: str, **fmt: Any) -> str:
        """This language's text for `key`, formatted with `fmt`."""
        text = catalogue(self.lang).get(key)
        if text is None:
            text = catalogue(DEFAULT).get(key, key)
        return text.format(**fmt) if fmt else text

    def plural(self, key: str, count: int, **fmt: Any) -> str:
        """`key.<category>` for the CLDR plural category of `count` in this language
        (Babel: one, few, many, other...), `key.other` if the catalogue lacks that
        category; `count` is a field too."""
        category = _locale(self.lang).plural_form(count)
        if f"{key}.{category}" not in catalogue(self.lang):
            category = "other"
        return self.t(f"{key}.{category}", count=count, **fmt)

    def error_text(self, error: dict[str, Any], pin: bool = False) -> str:
        """What to tell the person for a daemon error {"code", "message", ...}."""
        code = str(error.get("code", ""))
        if code == "invalid_code":
            left = int(error.get("tries_left", 0) or 0)
            key = "error.wrong_pin" if pin else "error.invalid_code"
            return self.plural(key, left, tries_left=left)
        if code == "locked_out":
            return self.t("error.locked_out", seconds=int(error.get("retry_after", 0) or 0))
        if code in KNOWN_ERRORS:
            return self.t(f"error.{code}")
        return self.t("error.unknown")
