"""Import boundaries and module hygiene, read from the source with `ast` (nothing is imported).

Who may import whom is drawn at the top of docs/architecture.md; this file
enforces it, and checks that the picture tells the truth:

* kiosk.domain, kiosk.ledger and kiosk.service never import a hardware, MQTT
  or UI library (paho, pymodbus, serial, gpiozero, textual);
* kiosk.domain imports only the standard library and itself;
* kiosk.service reaches hardware only through firmware_bridge.bank (the
  LockBank interface), never a backend;
* firmware_bridge imports nothing from kiosk;
* nothing imports kiosk.ui except kiosk/cli.py;
* only kiosk.metrics imports prometheus_client (the service feeds it through
  its observer port, kiosk.service.observer);
* no keypad screen imports the app (kiosk.ui.app): screens see it through
  the host protocol in kiosk.ui.host;
* above the service (api, cloud, daemon, ui, the CLI) nothing reaches through
  the service: no attribute named `ctx` of anything, no `.execute` call, no SQL
  string; it asks the service (or a port the composition hands it);
* the device (kiosk, firmware_bridge) never imports the cloud tool
  (kiosk_cloud, under cloudtool/) and holds no signing code;
* every module opens with a one-line docstring and stays under MAX_LINES;
* the picture draws every package and every import the code makes between
  them, and no arrow the rules above forbid.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "firmware_bridge")
#: The cloud's tool: its own distribution (cloudtool/pyproject.toml), same hygiene rules.
CLOUD_TOOL = ("kiosk_cloud", ROOT / "cloudtool")
MAX_LINES = 450
FORBIDDEN_IN_CORE = ("paho", "pymodbus", "serial", "gpiozero", "textual", "textual_serve")
CORE = ("kiosk.domain", "kiosk.service", "kiosk.ledger")

#: Inside `kiosk`, what each layer may import from `kiosk` and `firmware_bridge`.
#: Layers not listed (wiring, demo, cli, api, ...) are edges and may import any layer.
ALLOWED: dict[str, tuple[str, ...]] = {
    "kiosk.domain": ("kiosk.domain",),
    "kiosk.clock": (),
    "kiosk.config": ("kiosk.config", "kiosk.domain", "firmware_bridge.defaults"),
    "kiosk.ledger": ("kiosk.ledger", "kiosk.domain", "kiosk.clock"),
    "kiosk.service": (
        "kiosk.service",
        "kiosk.domain",
        "kiosk.ledger",
        "kiosk.clock",
        "kiosk.config.model",
        "firmware_bridge.bank",
    ),
    "firmware_bridge": ("firmware_bridge",),
    # the contract code it shares, and the CLI's closed-stdout guard (stdlib only)
    "kiosk_cloud": ("kiosk.cloud", "kiosk.domain", "kiosk.cli_guard"),
}


@dataclass(frozen=True)
class Module:
    name: str  # kiosk.service.access
    path: Path

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @cached_property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.source, filename=str(self.path))

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @cached_property
    def imports(self) -> list[tuple[int, str]]:
        """(line, absolute module name) of every import anywhere in the module."""
        out: list[tuple[int, str]] = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                out += [(node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = self._resolve(node)
                out.append((node.lineno, base))
                # `from pkg import name` may import the submodule pkg.name.
                out += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
        return out

    def _resolve(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.name.split(".")
        package = parts if self.is_package else parts[:-1]
        base = package[: len(package) - (node.level - 1)]
        return ".".join([*base, *([node.module] if node.module else [])])

    def imports_of(self, *prefixes: str) -> list[str]:
        return sorted(
            {
                f"{self.rel}:{line} imports {name}"
                for line, name in self.imports
                if any(_within(name, p) for p in prefixes)
            }
        )


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def discover() -> list[Module]:
    modules = []
    for package, where in [*((p, ROOT) for p in PACKAGES), CLOUD_TOOL]:
        for path in sorted((where / package).rglob("*.py")):
            parts = list(path.relative_to(where).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules.append(Module(".".join(parts), path))
    return modules


MODULES = discover()
DEVICE = [m for m in MODULES if m.name.split(".")[0] in PACKAGES]


def in_layer(layer: str) -> list[Module]:
    return [m for m in MODULES if _within(m.name, layer)]


def ids(module: Module) -> str:
    return module.rel


def test_the_scan_sees_every_layer():
    for layer in (*CORE, "kiosk.config", "firmware_bridge", "kiosk_cloud"):
        assert in_layer(layer), f"no modules found under {layer}"
    assert any(m.name == "kiosk.cli" for m in MODULES)


@pytest.mark.parametrize("module", [m for layer in CORE for m in in_layer(layer)], ids=ids)
def test_core_imports_no_hardware_mqtt_or_ui_library(module):
    assert module.imports_of(*FORBIDDEN_IN_CORE) == []


def test_only_the_metrics_import_prometheus_client():
    assert in_layer("kiosk.metrics"), "no modules found under kiosk.metrics"
    outside = [m for m in DEVICE if not _within(m.name, "kiosk.metrics")]
    found = [line for m in outside for line in m.imports_of("prometheus_client")]
    assert found == [], "prometheus_client is for kiosk.metrics alone"


@pytest.mark.parametrize("module", in_layer("kiosk.domain"), ids=ids)
def test_domain_is_pure(module):
    """Only the standard library and kiosk.domain itself: no I/O library, no other layer."""
    foreign = sorted(
        f"{module.rel}:{line} imports {name}"
        for line, name in module.imports
        if name.split(".")[0] not in sys.stdlib_module_names
        and not _within(name, "kiosk.domain")
        and name.split(".")[0] != "__future__"
    )
    assert foreign == []


@pytest.mark.parametrize(
    ("layer", "module"),
    [(layer, m) for layer in ALLOWED for m in in_layer(layer)],
    ids=lambda v: v.rel if isinstance(v, Module) else v,
)
def test_layer_imports_only_what_it_may(layer, module):
    own = [name for _, name in module.imports if _within(name, "kiosk")]
    own += [name for _, name in module.imports if _within(name, "firmware_bridge")]
    allowed = ALLOWED[layer]
    bad = sorted(
        {
            n
            for n in own
            if not any(_within(n, a) for a in allowed)
            # `from kiosk.domain import errors` also yields "kiosk.domain"
            and not any(_within(a, n) for a in allowed)
        }
    )
    assert bad == [], f"{module.rel} ({layer}) may import only {allowed}, not {bad}"


@pytest.mark.parametrize("module", in_layer("firmware_bridge"), ids=ids)
def test_firmware_bridge_imports_nothing_from_kiosk(module):
    assert module.imports_of("kiosk") == []


@pytest.mark.parametrize("module", in_layer("kiosk.ui.screens"), ids=ids)
def test_no_screen_imports_the_app(module):
    """The app imports the screens; a screen reaches the app through kiosk.ui.host."""
    assert module.imports_of("kiosk.ui.app") == []


@pytest.mark.parametrize("module", DEVICE, ids=ids)
def test_the_device_never_imports_the_cloud_tool(module):
    assert module.imports_of("kiosk_cloud") == []


#: What only a signer needs: the private key type, loading one, and JWS encoding.
SIGNING_NAMES = ("Ed25519PrivateKey", "load_pem_private_key")


@pytest.mark.parametrize("module", DEVICE, ids=ids)
def test_the_device_holds_no_signing_code(module):
    """Commands are signed in kiosk_cloud.signing; a kiosk only verifies (kiosk.cloud.tokens)."""
    found = sorted(
        f"{module.rel}:{node.lineno} {what}"
        for node in ast.walk(module.tree)
        for what in _signing(node)
    )
    assert found == []


def _signing(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name) and node.id in SIGNING_NAMES:
        return [node.id]
    if isinstance(node, ast.Attribute) and node.attr in SIGNING_NAMES:
        return [node.attr]
    if isinstance(node, ast.alias) and node.name.split(".")[-1] in SIGNING_NAMES:
        return [f"imports {node.name}"]
    if (
        isinstance(node, ast.Attribute)
        and node.attr == "encode"
        and isinstance(node.value, ast.Name)
        and node.value.id == "jwt"
    ):
        return ["jwt.encode"]
    return []


def test_nothing_imports_the_ui_but_the_cli():
    offenders = [
        hit
        for m in MODULES
        if m.name != "kiosk.cli" and not _within(m.name, "kiosk.ui")
        for hit in m.imports_of("kiosk.ui")
    ]
    assert offenders == []


#: Above the service layer: these ask the service, they never reach through it.
ABOVE_SERVICE = (
    "kiosk.api",
    "kiosk.cloud",
    "kiosk.daemon",
    "kiosk.ui",
    "kiosk.cli",
    "kiosk.cli_ops",
)
EXECUTE = {"execute", "executemany", "executescript"}
SQL = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+INTO|UPDATE\b.*\bSET|DELETE\s+FROM|PRAGMA)\b",
    re.IGNORECASE | re.DOTALL,
)


def _reaching_through(module: Module) -> list[str]:
    hits: list[str] = []
    for node in ast.walk(module.tree):
        where = f"{module.rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and node.attr == "ctx":
            hits.append(f"{where} touches .ctx")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in EXECUTE:
                hits.append(f"{where} calls .{node.func.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL.search(node.value)
        ):
            hits.append(f"{where} holds SQL {node.value[:40]!r}")
    return hits


ABOVE = [m for m in DEVICE if any(_within(m.name, layer) for layer in ABOVE_SERVICE)]


def test_the_boundary_scan_sees_the_layers_above_the_service():
    names = {m.name for m in ABOVE}
    assert {"kiosk.api.handlers", "kiosk.cloud.wiring", "kiosk.daemon.app", "kiosk.cli"} <= names


@pytest.mark.parametrize("module", ABOVE, ids=ids)
def test_nothing_above_the_service_reaches_through_it(module):
    assert _reaching_through(module) == []


@pytest.mark.parametrize("module", MODULES, ids=ids)
def test_module_opens_with_a_one_line_docstring(module):
    if not module.tree.body:
        pytest.skip("empty package marker")
    first = module.source.splitlines()[0]
    assert first.lstrip("rRuU").startswith('"""') and len(first.strip().strip("rRuU")) > 3, (
        f"{module.rel} must open with its docstring, purpose on the first line: {first!r}"
    )
    doc = ast.get_docstring(module.tree, clean=False)
    assert doc, f"{module.rel} has no module docstring"
    lines = doc.split("\n")
    assert lines[0].strip(), f"{module.rel}: the docstring's first line is empty"
    if len(lines) > 1:
        assert not lines[1].strip(), (
            f"{module.rel}: the purpose must fit on one line (a blank line before any more)"
        )


def test_no_module_is_over_the_line_limit():
    sizes = {m.rel: len(m.source.splitlines()) for m in MODULES}
    over = {rel: n for rel, n in sorted(sizes.items()) if n > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: {over}"


FORMATTER_SKIPS_ALLOWED = 5  # a table that reads better by hand, at most a handful


def test_the_formatter_is_not_fought():
    root = Path(__file__).resolve().parents[1]
    trees = ("kiosk", "firmware_bridge", "cloudtool", "tests", "bench")
    skips = [
        f"{path.relative_to(root)}:{n}"
        for tree in trees
        for path in sorted((root / tree).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "# fmt: skip" in line or "# fmt: off" in line
    ]
    assert len(skips) <= FORMATTER_SKIPS_ALLOWED, f"let ruff format these: {skips}"


# --- the picture at the top of docs/architecture.md ---------------------------------

ARCHITECTURE_MD = ROOT / "docs" / "architecture.md"
#: `from kiosk import __version__`: the version string, not a layer.
_ROOT_NAMES = {"kiosk", "kiosk.__version__"}
_NODE = re.compile(r'^\s*(\w+)\["([^"]+)"\]\s*$')
_SUBGRAPH = re.compile(r"^\s*subgraph\s+(\w+)")
_EDGE = re.compile(r"^\s*(\w+)\s*-->(?:\|([^|]+)\|)?\s*(.+?)\s*$")


@dataclass(frozen=True)
class Picture:
    nodes: dict[str, tuple[str, ...]]  # node id -> the module names it stands for
    edges: set[tuple[str, str]]  # (source node id, target module name)

    def node_of(self, name: str) -> str | None:
        """The id of the node that stands for module `name` (the longest name that holds it)."""
        held = [
            (len(m), node) for node, names in self.nodes.items() for m in names if _within(name, m)
        ]
        return max(held)[1] if held else None

    def draws(self, source: str, target: str) -> bool:
        """Does an arrow let module `source` import module `target`?"""
        node = self.node_of(source)
        return any(n == node and (_within(target, t) or _within(t, target)) for n, t in self.edges)


def picture() -> Picture:
    """The first Mermaid block of docs/architecture.md; it must come before the second section."""
    text = ARCHITECTURE_MD.read_text(encoding="utf-8")
    block = re.search(r"^```mermaid\n(.*?)^```", text, re.S | re.M)
    assert block, "docs/architecture.md has no ```mermaid picture of the packages"
    assert text[: block.start()].count("\n## ") <= 1, "the picture must open docs/architecture.md"
    nodes: dict[str, tuple[str, ...]] = {}
    groups: dict[str, list[str]] = {}
    open_group: str | None = None
    edges: set[tuple[str, str]] = set()
    for line in block.group(1).splitlines():
        if node := _NODE.match(line):
            nodes[node.group(1)] = tuple(n.strip() for n in node.group(2).split(","))
            if open_group:
                groups[open_group].append(node.group(1))
        elif group := _SUBGRAPH.match(line):
            open_group = group.group(1)
            groups[open_group] = []
        elif line.strip() == "end":
            open_group = None
        elif edge := _EDGE.match(line):
            source, label = edge.group(1), edge.group(2)
            for target in (t.strip() for t in edge.group(3).split("&")):
                names = (
                    [label.strip()]
                    if label
                    else [name for node in groups.get(target, [target]) for name in nodes[node]]
                )
                edges |= {(source, name) for name in names}
    return Picture(nodes, edges)


def test_the_picture_has_every_package():
    pic = picture()
    missing = sorted({m.name for m in MODULES if m.name != "kiosk" and not pic.node_of(m.name)})
    assert missing == [], f"docs/architecture.md's picture has no node for {missing}"


def test_the_picture_draws_every_import_between_packages():
    pic = picture()
    missing = sorted(
        {
            f"{', '.join(pic.nodes[pic.node_of(m.name) or ''])} --> {name} ({m.rel}:{line})"
            for m in MODULES
            if m.name != "kiosk"
            for line, name in m.imports
            if name.split(".")[0] in PACKAGES
            and name not in _ROOT_NAMES
            and pic.node_of(name) != pic.node_of(m.name)
            and not pic.draws(m.name, name)
        }
    )
    assert missing == [], "imports docs/architecture.md's picture does not draw:\n" + "\n".join(
        missing
    )


def test_the_picture_draws_no_arrow_the_rules_forbid():
    pic = picture()
    bad = []
    for node, target in sorted(pic.edges):
        for source in pic.nodes[node]:
            layer = next((lay for lay in ALLOWED if _within(source, lay)), None)
            if layer and not any(_within(target, a) for a in ALLOWED[layer]):
                bad.append(f"{source} --> {target}: {layer} may import only {ALLOWED[layer]}")
            if _within(target, "kiosk.ui") and source != "kiosk.cli":
                bad.append(f"{source} --> {target}: only kiosk.cli imports kiosk.ui")
            if _within(source, "firmware_bridge") and _within(target, "kiosk"):
                bad.append(f"{source} --> {target}: firmware_bridge imports nothing from kiosk")
    assert bad == []
