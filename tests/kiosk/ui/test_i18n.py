"""Every word on the keypad comes from a catalogue, and every catalogue has every word."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from kiosk.domain import errors
from kiosk.ui import i18n

UI = Path(i18n.__file__).resolve().parents[1]
SOURCES = sorted(UI.rglob("*.py"))
#: Calls whose string arguments a person reads: widgets, texts, toasts.
SHOWN = {
    "Static",
    "Label",
    "Button",
    "Digits",
    "TabPane",
    "Input",
    "notify",
    "update",
    "Msg",
    "TButton",
    "say",
    "add_row",
    "add_column",
    "ProgressBar",
}
#: Calls whose first argument is a catalogue key.
KEYED = {"t", "plural", "Msg", "TButton", "say"}
#: Calls whose string arguments are keys: catalogue keys, or a dict's (`.get`).
CATALOGUE_CALLS = {"t", "plural", "error_text", "get"}
#: Keyword arguments that are identifiers and style, never shown.
NOT_SHOWN = {"id", "classes", "name", "key", "severity", "group", "cursor_type"}
#: Codes the keypad must explain in the person's language (from the issue).
MUST_MAP = [
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
    "door_state_unknown",
]


def _calls():
    for path in SOURCES:
        if path.parent.name == "i18n":
            continue  # the catalogue loader itself
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                yield path, node, name


def _shown(node: ast.AST):
    """String literals inside an argument that would reach the screen as they are."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str) and any(ch.isalpha() for ch in node.value):
            yield node
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in CATALOGUE_CALLS:
            return  # its strings are catalogue keys
        for arg in [func, *node.args, *(k.value for k in node.keywords)]:
            yield from _shown(arg)
    elif isinstance(node, ast.Subscript):
        yield from _shown(node.value)  # row["ts"] shows the value, not the key
    else:
        for child in ast.iter_child_nodes(node):
            yield from _shown(child)


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_catalogue_has_every_key_with_the_same_fields():
    english = i18n.catalogue("en")
    for lang in i18n.LANGUAGES:
        other = i18n.catalogue(lang)
        assert set(other) == set(english), f"{lang}: keys differ from en"
        for key, text in english.items():
            assert _fields(other[key]) == _fields(text), f"{lang}: {key} has other fields"
            assert other[key].strip(), f"{lang}: {key} is empty"


def test_no_string_literal_is_shown_without_the_catalogue():
    bad = []
    for path, node, name in _calls():
        if name not in SHOWN:
            continue
        args = [a for a in node.args[1 if name in KEYED else 0 :]]
        args += [k.value for k in node.keywords if k.arg not in NOT_SHOWN]
        for arg in args:
            for sub in _shown(arg):
                bad.append(f"{path.relative_to(UI)}:{sub.lineno} {name}({sub.value!r})")
    assert bad == []


def test_every_key_the_code_uses_exists():
    english = i18n.catalogue("en")
    missing = []
    for path, node, name in _calls():
        if name not in KEYED or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            key = first.value
            if key and key not in english and not any(k.startswith(key + ".") for k in english):
                missing.append(f"{path.relative_to(UI)}:{node.lineno} {key}")
        elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
            prefix = str(first.values[0].value)
            if not any(k.startswith(prefix) for k in english):
                missing.append(f"{path.relative_to(UI)}:{node.lineno} {prefix}...")
    assert missing == []


@pytest.mark.parametrize("code", MUST_MAP)
def test_daemon_error_codes_read_in_german(code):
    error = {"code": code, "message": "English from the daemon", "tries_left": 3, "retry_after": 30}
    english = i18n.Texts("en").error_text(error)
    german = i18n.Texts("de").error_text(error)
    assert german != english and german != error["message"]
    assert english != i18n.catalogue("en")["error.unknown"]


def test_the_codes_it_maps_are_the_daemons_codes():
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.KioskError)
    }
    assert set(MUST_MAP) - {"not_allowed"} <= codes


def test_tries_left_and_seconds_are_filled_in():
    texts = i18n.Texts("en")
    assert texts.error_text({"code": "invalid_code", "tries_left": 1}).endswith("1 try left.")
    assert "2 tries left" in texts.error_text({"code": "invalid_code", "tries_left": 2})
    assert "45 seconds" in texts.error_text({"code": "locked_out", "retry_after": 45})
    assert texts.error_text({"code": "no_such_code"}) == texts.t("error.unknown")


async def test_two_apps_in_one_process_each_show_their_own_language(tmp_path):
    """The language is an app's state: switching one keypad never relabels another."""
    from ui_support import SIZE, make_app, screen_text, until

    socket = str(tmp_path / "no-daemon.sock")  # both stay on their own screens, unlinked
    english, german = make_app(socket, language="en"), make_app(socket, language="de")
    en_title, de_title = i18n.catalogue("en")["app.title"], i18n.catalogue("de")["app.title"]
    async with english.run_test(size=SIZE) as en_pilot, german.run_test(size=SIZE) as de_pilot:
        await until(en_pilot, lambda: en_title in screen_text(english), what="English")
        await until(de_pilot, lambda: de_title in screen_text(german), what="German")
        assert de_title not in screen_text(english) and en_title not in screen_text(german)
        await en_pilot.press("f3")  # English -> German
        await until(en_pilot, lambda: de_title in screen_text(english), what="now German")
        await de_pilot.press("f3")  # German -> English
        await until(de_pilot, lambda: en_title in screen_text(german), what="now English")
        await en_pilot.press("f3")  # back to English, then German again: relabelled twice
        await en_pilot.press("f3")
        await until(en_pilot, lambda: de_title in screen_text(english), what="German again")
        assert (english.lang, german.lang) == ("de", "en")
        assert en_title in screen_text(german) and de_title not in screen_text(german)
