"""Import boundaries and module hygiene, read from the source with `ast` (nothing is imported).

Who may import whom is drawn in docs/architecture.md; this file enforces it:

* kiosk.domain, kiosk.ledger and kiosk.service never import a hardware, MQTT
  or UI library (paho, pymodbus, serial, gpiozero, textual);
* kiosk.domain imports only the standard library and itself;
* kiosk.service reaches hardware only through firmware_bridge.bank (the
  LockBank interface), never a backend;
* firmware_bridge imports nothing from kiosk;
* nothing imports kiosk.ui except kiosk/cli.py;
* the device (kiosk, firmware_bridge) never imports the cloud tool
  (kiosk_cloud, under cloudtool/) and holds no signing code;
* every module opens with a one-line docstring and stays under MAX_LINES.
"""

from __future__ import annotations

import ast
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
    "kiosk.config": ("kiosk.config", "kiosk.domain"),
    "kiosk.ledger": ("kiosk.ledger", "kiosk.domain", "kiosk.clock"),
    "kiosk.service": (
        "kiosk.service", "kiosk.domain", "kiosk.ledger", "kiosk.clock", "kiosk.config.model",
        "firmware_bridge.bank",
    ),
    "firmware_bridge": ("firmware_bridge",),
    "kiosk_cloud": ("kiosk.cloud", "kiosk.domain"),  # the contract code it shares
}  # fmt: skip


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
