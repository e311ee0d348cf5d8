"""The house as its imports draw it: cli (and the console) → broker / connectors → client → wire,
no arrow back up.

Every module of the four packages is parsed with :mod:`ast` (nothing is imported), each ``import``
and ``from ... import`` (relative ones resolved, those inside functions included) is placed in a
layer, and an arrow the wrong way fails the test naming the module, its line and the import.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {
    "logsvc": ROOT / "logsvc",
    "logsvc_wire": ROOT / "clients" / "logsvc_wire",
    "logsvc_client": ROOT / "clients" / "logsvc_client",
    "logsvc_connect": ROOT / "connectors" / "logsvc_connect",
}
#: layer → the layers it must not import
FORBIDDEN = {
    "wire": {"client", "broker", "cli", "connectors"},
    "client": {"broker", "cli", "connectors"},
    "broker": {"client", "cli", "connectors"},
    "connectors": {"broker", "cli"},
}
#: modules that were the client's and now live in the wire, with no shim left behind
MOVED_TO_WIRE = ["batch", "record_check", "compression", "partitioner", "_proto", "_codec"]


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to (None: not ours — stdlib or a dependency)."""
    top, _, _ = module.partition(".")
    if top == "logsvc":
        # the console is a tool on the client's side, like the CLI: the top layer
        tools = ("logsvc.cli", "logsvc.console")
        return "cli" if module in tools or module.startswith(tuple(f"{t}." for t in tools)) else "broker"
    return {"logsvc_wire": "wire", "logsvc_client": "client", "logsvc_connect": "connectors"}.get(top)


def modules() -> list[tuple[str, pathlib.Path]]:
    out = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join((package, *parts)), path))
    return out


def imports(module: str, path: pathlib.Path) -> list[tuple[int, str, str]]:
    """``(line, imported module, source text)`` for every import in the file."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, f"import {alias.name}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = ", ".join(alias.name for alias in node.names)
            text = f"from {'.' * node.level}{node.module or ''} import {names}"
            # ``from pkg import submodule`` imports pkg.submodule: judge by pkg, which is imported too
            out.append((node.lineno, base, text))
    return out


def wrong_way_arrows() -> list[str]:
    found = []
    for module, path in modules():
        source = layer_of(module)
        for line, target, text in imports(module, path):
            target_layer = layer_of(target)
            if source in FORBIDDEN and target_layer in FORBIDDEN[source]:
                where = path.relative_to(ROOT)
                found.append(f"{where}:{line} ({module}, {source}) imports {target_layer}: {text}")
    return found


def test_no_import_points_the_wrong_way_between_wire_client_broker_and_connectors() -> None:
    # Given every module of the broker, the wire, the client and the connectors
    # When each import is placed in its layer
    arrows = wrong_way_arrows()
    # Then none goes up: wire imports no one, the client only the wire, the broker no client
    assert not arrows, "imports against the layering (cli → broker/connectors → client → wire):\n" + "\n".join(arrows)


def test_the_layout_check_sees_an_arrow_the_wrong_way(tmp_path: pathlib.Path) -> None:
    # Given a wire module that imports the client, relatively and absolutely
    path = tmp_path / "bad.py"
    path.write_text("from logsvc_client.errors import LogsvcError\nfrom ..logsvc import settings\n")
    # When its imports are read
    found = imports("logsvc_wire.bad", path)
    # Then both are resolved to what they name
    assert [(line, layer_of(target)) for line, target, _ in found] == [(1, "client"), (2, "broker")]


@pytest.mark.parametrize("name", MOVED_TO_WIRE)
def test_a_module_moved_to_the_wire_left_no_shim_in_the_client(name: str) -> None:
    # Given the client package; Then the wire's modules are not there under their old names
    client = PACKAGES["logsvc_client"]
    assert not (client / f"{name}.py").exists()
    assert not (client / name).is_dir()
    assert (
        (PACKAGES["logsvc_wire"] / f"{name}.py").exists()
        or (PACKAGES["logsvc_wire"] / name).is_dir()
        or (PACKAGES["logsvc_wire"] / f"{name}.c").exists()
    )
