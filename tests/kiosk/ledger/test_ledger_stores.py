"""The ledger is split by concern: one store module per group of tables, no mixin, no stubs.

Read from the source with `ast` (nothing is imported): every SQL statement in
kiosk/ledger belongs to the table it names first (after FROM, INTO or
UPDATE), and each table's statements sit in one store module, so a reader
finds a table's rules in one file. `meta` is shared by key: each key
(`audit_head`, `trusted_time`) has one owner. The schema (migrations.py) is
the one place every table appears.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

from kiosk.ledger.migrations import migrate

LEDGER = Path(__file__).resolve().parents[3] / "kiosk" / "ledger"
#: The store modules and what each owns (docs/architecture.md says the same).
STORES = {
    "parcels.py": {"lockers", "parcels"},
    "codes.py": {"codes", "attempts", "limiter", "pin_limiter"},
    "doors.py": {"door_ops"},
    "audit.py": {"audit", "meta:audit_head"},
    "outbox.py": {"outbox", "inbox"},
    "settings.py": {"technicians", "meta:trusted_time"},
}
MAX_STORE_LINES = 300
_FIRST_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)
_SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b", re.IGNORECASE)


def _tables() -> set[str]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn)
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows if not name.startswith("sqlite_")}
    finally:
        conn.close()


def _strings(tree: ast.AST) -> list[str]:
    """Each string literal, with implicit concatenations and f-string parts joined."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append(
                "".join(
                    v.value if isinstance(v, ast.Constant) else "{}"
                    for v in node.values
                    if isinstance(v, ast.Constant | ast.FormattedValue)
                )
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
    return found


def _owners() -> dict[str, set[str]]:
    """table (or meta:key) -> the modules whose SQL names it first."""
    owners: dict[str, set[str]] = defaultdict(set)
    tables = _tables()
    for path in sorted(LEDGER.glob("*.py")):
        if path.name == "migrations.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for text in _strings(tree):
            if not _SQL.match(text):
                continue
            first = _FIRST_TABLE.search(text)
            if first is None or first.group(1) not in tables:
                continue
            table = first.group(1)
            if table == "meta":
                for key in re.findall(r"'(\w+)'", text):
                    owners[f"meta:{key}"].add(path.name)
            else:
                owners[table].add(path.name)
        # A table chosen at run time (the two limiters) is named by a whole string constant.
        for text in _strings(tree):
            if text in tables and text != "meta":
                owners[text].add(path.name)
    return owners


def test_each_table_has_its_sql_in_one_store_module() -> None:
    owners = _owners()
    shared = {table: sorted(mods) for table, mods in owners.items() if len(mods) > 1}
    assert shared == {}, f"tables whose SQL is spread over several modules: {shared}"
    expected = {table: {module} for module, tables in STORES.items() for table in tables}
    assert dict(owners) == expected
    assert {t for t in expected if ":" not in t} | {"meta"} == _tables()


def test_no_mixin_and_no_stub() -> None:
    for path in sorted(LEDGER.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                assert not (isinstance(raised, ast.Name) and raised.id == "NotImplementedError"), (
                    f"{path.name}:{node.lineno}: a NotImplementedError stub"
                )
            if isinstance(node, ast.ClassDef) and path.name in {"db.py", *STORES}:
                assert node.bases == [], f"{path.name}: class {node.name} inherits (a mixin?)"


def test_ledger_is_a_handle_on_its_stores() -> None:
    tree = ast.parse((LEDGER / "db.py").read_text(encoding="utf-8"))
    ledger = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Ledger")
    public = sorted(
        n.name for n in ledger.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
    )
    assert public == ["backup", "checkpoint", "close", "open", "tx"]
    source = ast.unparse(ledger)
    for store in ("parcels", "codes", "doors", "audit", "outbox", "settings"):
        assert f"self.{store} = " in source, f"Ledger does not expose ledger.{store}"


def test_store_modules_are_small_with_a_purpose_line() -> None:
    for name in STORES:
        text = (LEDGER / name).read_text(encoding="utf-8")
        assert len(text.splitlines()) <= MAX_STORE_LINES, name
        doc = ast.get_docstring(ast.parse(text))
        assert doc and doc.splitlines()[0].strip(), f"{name} has no purpose line"
