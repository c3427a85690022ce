"""Every command, subcommand and option of `kiosk` and `kiosk-cloud` is documented in README.md.

The parsers are walked, not listed by hand, so a new command or option fails
here until README's command table shows it. (Config keys: tests/config.)
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.cli import build_parser
from kiosk_cloud.cli import build_parser as build_cloud_parser

README = Path(__file__).resolve().parents[1] / "README.md"
#: argparse's own --help and --version explain themselves.
_SELF_DOCUMENTING = {"help", "version"}


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("kiosk", "config", "check"), ("kiosk-cloud", "reserve")
    parser: argparse.ArgumentParser
    leaf: bool

    @property
    def name(self) -> str:
        return " ".join(self.path)


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse has no public way to list a parser's arguments; _actions is the
    # one every argparse-walking tool (sphinx-argparse, shtab) reads.
    return list(parser._actions)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for action in _actions(parser):
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("kiosk",)) -> list[Command]:
    """Every command reachable from `parser`, itself included, depth first."""
    subs = _subcommands(parser)
    out = [Command(path, parser, leaf=not subs)]
    for name, sub in subs.items():
        out += walk(sub, (*path, name))
    return out


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in _actions(parser) if a.option_strings and a.dest not in _SELF_DOCUMENTING]


def positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in _actions(parser)
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]


def usage_of(action: argparse.Action) -> list[str]:
    """How README may spell an option: `--db FILE` for one that takes a value, else `--strict`."""
    if action.nargs == 0:
        return list(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return [f"{opt} {metavar}" for opt in action.option_strings] + [
        f"{opt}={metavar}" for opt in action.option_strings
    ]


def readme() -> str:
    return README.read_text(encoding="utf-8")


def command_table() -> dict[str, str]:
    """README's command tables: command words ("kiosk config check") -> the row's synopsis."""
    rows: dict[str, str] = {}
    for line in readme().splitlines():
        cells = [
            c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))
        ]
        if not line.startswith("|") or not cells[0].startswith("`kiosk"):
            continue
        for synopsis in re.findall(r"`(kiosk[^`]*)`", cells[0]):
            words = []
            for token in synopsis.split()[1:]:
                if not re.fullmatch(r"[a-z][a-z-]*", token):
                    break
                words.append(token)
            rows[" ".join([synopsis.split()[0], *words])] = synopsis
    return rows


PARSER = build_parser()
#: `kiosk-cloud`, the cloud's tool (cloudtool/): its options go before ACTION.
CLOUD_PARSER = build_cloud_parser()
COMMANDS = walk(PARSER) + walk(CLOUD_PARSER, ("kiosk-cloud",))
LEAVES = [c for c in COMMANDS if c.leaf]
GLOBAL_OPTIONS = {s for a in options(PARSER) for s in a.option_strings}
CLOUD_OPTIONS = {s for a in options(CLOUD_PARSER) for s in a.option_strings}


def test_the_walk_finds_the_commands():
    names = {c.name for c in LEAVES}
    assert {"kiosk demo", "kiosk config check", "kiosk audit verify"} <= names
    assert {"kiosk-cloud keygen", "kiosk-cloud reserve", "kiosk-cloud nearby"} <= names


def test_readme_has_a_command_table():
    assert command_table(), "README.md has no `| kiosk ... |` command table"


@pytest.mark.parametrize("command", LEAVES, ids=lambda c: c.name)
def test_every_command_is_in_the_readme_table(command):
    table = command_table()
    assert command.name in table, (
        f"`{command.name}` is missing from README.md's command table "
        f"(it lists: {', '.join(sorted(table))})"
    )


@pytest.mark.parametrize("command", LEAVES, ids=lambda c: c.name)
def test_every_option_and_argument_is_in_its_row(command):
    row = command_table().get(command.name)
    if row is None:
        pytest.skip("the command itself is missing (reported above)")
    for action in options(command.parser):
        if set(action.option_strings) <= GLOBAL_OPTIONS:
            continue  # an option of every command (--config): see the next test
        spellings = usage_of(action)
        assert any(s in row for s in spellings), (
            f"README's row for `{command.name}` does not show {spellings[0]!r}: {row!r}"
        )
    for action in positionals(command.parser):
        metavar = str(action.metavar or action.dest.upper())
        assert re.search(rf"\b{re.escape(metavar)}\b", row), (
            f"README's row for `{command.name}` does not show its argument {metavar}: {row!r}"
        )


@pytest.mark.parametrize("option", sorted(GLOBAL_OPTIONS))
def test_global_options_are_in_the_readme(option):
    action = next(a for a in options(PARSER) if option in a.option_strings)
    spellings = usage_of(action)
    assert any(s in readme() for s in spellings), f"README.md does not show {spellings[0]!r}"


@pytest.mark.parametrize("option", sorted(CLOUD_OPTIONS))
def test_kiosk_cloud_options_are_in_its_row(option):
    """`kiosk-cloud [--broker HOST:PORT] ... ACTION`: the options before ACTION, in one row."""
    row = command_table().get("kiosk-cloud", "")
    action = next(a for a in options(CLOUD_PARSER) if option in a.option_strings)
    spellings = usage_of(action)
    assert any(s in row for s in spellings), f"README's `kiosk-cloud` row lacks {spellings[0]!r}"


def test_global_options_work_on_every_command():
    """What README promises: `--config FILE` is accepted before or after any subcommand."""
    for command in COMMANDS:
        if command.path[0] != "kiosk":
            continue
        own = {s for a in options(command.parser) for s in a.option_strings}
        assert own >= GLOBAL_OPTIONS, f"`{command.name}` does not accept {GLOBAL_OPTIONS - own}"


def test_the_table_lists_no_command_that_does_not_exist():
    known = {c.name for c in COMMANDS}
    ghosts = sorted(set(command_table()) - known)
    assert not ghosts, f"README.md documents commands the parser does not have: {ghosts}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if len(c.path) > 1], ids=lambda c: c.name)
def test_every_subcommand_has_help_text(command):
    """`kiosk --help` (and `kiosk config --help`, ...) says what each subcommand does."""
    parent = next(c for c in COMMANDS if c.path == command.path[:-1])
    listing = parent.parser.format_help()
    assert re.search(rf"^ +{re.escape(command.path[-1])} +\S", listing, re.MULTILINE), (
        f"`{parent.name} --help` lists {command.path[-1]!r} without help text:\n{listing}"
    )
