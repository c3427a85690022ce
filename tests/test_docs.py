"""Every command, option, exit code and config key is documented in its one page in docs/.

The commands are those of `kiosk` and of the cloud's tool, `kiosk-cloud`.

The parsers are walked, not listed by hand, so a new command or option fails
here until docs/cli.md's command table shows it; the same goes for the
exit codes the CLI returns (docs/cli.md) and every key the config schema
accepts (docs/config.md). The MQTT topics, events and commands are checked
against docs/contracts/mqtt.md in tests/kiosk/cloud/test_cloud_docs.py.
"""

from __future__ import annotations

import argparse
import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.cli import build_parser
from kiosk.config.schema import SECTIONS
from kiosk_cloud.cli import build_parser as build_cloud_parser

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"
CONFIG_MD = ROOT / "docs" / "config.md"
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
    """How docs/cli.md may spell an option: `--db FILE` if it takes a value, else `--strict`."""
    if action.nargs == 0:
        return list(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return [f"{opt} {metavar}" for opt in action.option_strings] + [
        f"{opt}={metavar}" for opt in action.option_strings
    ]


def cli_doc() -> str:
    return CLI_MD.read_text(encoding="utf-8")


def command_table() -> dict[str, str]:
    """docs/cli.md's command table: command words ("kiosk config check") -> the row's first cell."""
    rows: dict[str, str] = {}
    for line in cli_doc().splitlines():
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


def test_cli_doc_has_a_command_table():
    assert command_table(), "docs/cli.md has no `| kiosk ... |` command table"


@pytest.mark.parametrize("command", LEAVES, ids=lambda c: c.name)
def test_every_command_is_in_the_cli_doc_table(command):
    table = command_table()
    assert command.name in table, (
        f"`{command.name}` is missing from docs/cli.md's command table "
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
            f"docs/cli.md's row for `{command.name}` does not show {spellings[0]!r}: {row!r}"
        )
    for action in positionals(command.parser):
        metavar = str(action.metavar or action.dest.upper())
        assert re.search(rf"\b{re.escape(metavar)}\b", row), (
            f"docs/cli.md's row for `{command.name}` does not show its argument {metavar}: {row!r}"
        )


@pytest.mark.parametrize("option", sorted(GLOBAL_OPTIONS))
def test_global_options_are_in_the_cli_doc(option):
    action = next(a for a in options(PARSER) if option in a.option_strings)
    spellings = usage_of(action)
    assert any(s in cli_doc() for s in spellings), f"docs/cli.md does not show {spellings[0]!r}"


@pytest.mark.parametrize("option", sorted(CLOUD_OPTIONS))
def test_kiosk_cloud_options_are_in_its_row(option):
    """`kiosk-cloud [--broker HOST:PORT] ... ACTION`: the options before ACTION, in one row."""
    row = command_table().get("kiosk-cloud", "")
    action = next(a for a in options(CLOUD_PARSER) if option in a.option_strings)
    spellings = usage_of(action)
    assert any(s in row for s in spellings), (
        f"docs/cli.md's `kiosk-cloud` row lacks {spellings[0]!r}"
    )


def test_global_options_work_on_every_command():
    """What docs/cli.md promises: `--config FILE` is accepted before or after any subcommand."""
    for command in COMMANDS:
        if command.path[0] != "kiosk":
            continue
        own = {s for a in options(command.parser) for s in a.option_strings}
        assert own >= GLOBAL_OPTIONS, f"`{command.name}` does not accept {GLOBAL_OPTIONS - own}"


def test_the_table_lists_no_command_that_does_not_exist():
    known = {c.name for c in COMMANDS}
    ghosts = sorted(set(command_table()) - known)
    assert not ghosts, f"docs/cli.md documents commands the parser does not have: {ghosts}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if len(c.path) > 1], ids=lambda c: c.name)
def test_every_subcommand_has_help_text(command):
    """`kiosk --help` (and `kiosk config --help`, ...) says what each subcommand does."""
    parent = next(c for c in COMMANDS if c.path == command.path[:-1])
    listing = parent.parser.format_help()
    assert re.search(rf"^ +{re.escape(command.path[-1])} +\S", listing, re.MULTILINE), (
        f"`{parent.name} --help` lists {command.path[-1]!r} without help text:\n{listing}"
    )


def exit_codes() -> dict[str, int]:
    """Every module-level `EXIT_* = <int>` in kiosk/ (tuple assignments too): file:name -> code."""
    found: dict[str, int] = {}
    for path in sorted((ROOT / "kiosk").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target, value = node.targets[0], node.value
            pairs = (
                zip(target.elts, value.elts, strict=False)
                if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
                else [(target, value)]
            )
            for name, code in pairs:
                if (
                    isinstance(name, ast.Name)
                    and name.id.startswith("EXIT_")
                    and isinstance(code, ast.Constant)
                    and isinstance(code.value, int)
                ):
                    found[f"{path.relative_to(ROOT).as_posix()}:{name.id}"] = code.value
    return found


def documented_exit_codes() -> set[int]:
    """The first cells of the table under docs/cli.md's "Exit codes" heading."""
    section = cli_doc().split("\n## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m) for m in re.findall(r"^\| *(\d+) *\|", section, re.MULTILINE)}


def test_the_exit_code_scan_finds_the_cli_s():
    names = {key.split(":")[1] for key in exit_codes()}
    assert {"EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "EXIT_NO_DAEMON"} <= names


@pytest.mark.parametrize(("name", "code"), sorted(exit_codes().items()))
def test_every_exit_code_is_in_the_cli_doc(name, code):
    assert code in documented_exit_codes(), f"docs/cli.md's exit codes do not list {code} ({name})"


def config_keys() -> list[str]:
    """`section.key` for every key the loader accepts."""
    return sorted({f"{section.name}.{key.name}" for section in SECTIONS for key in section.keys})


def documented_config_keys() -> set[str]:
    """`section.key` for every first-cell `key` of a table under a `## [section]` heading."""
    out: set[str] = set()
    section = None
    for line in CONFIG_MD.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"^## `\[\[?([a-z_]+)\]\]?`", line):
            section = heading.group(1)
        elif section and (cell := re.match(r"^\| `([a-z_]+)` \|", line)):
            out.add(f"{section}.{cell.group(1)}")
    return out


def test_the_config_scan_sees_every_section():
    assert {s.name for s in SECTIONS} == {k.split(".")[0] for k in documented_config_keys()}


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_is_in_the_config_doc(key):
    assert key in documented_config_keys(), f"docs/config.md has no row for {key}"


def test_the_config_doc_lists_no_key_the_loader_refuses():
    ghosts = sorted(documented_config_keys() - set(config_keys()))
    assert not ghosts, f"docs/config.md documents keys the schema does not have: {ghosts}"
