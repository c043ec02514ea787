"""The one layering rule: `contracts/` and `storage/` import nothing of ours, `messaging/` (the broker I/O
both sides share) only `contracts/`, and `edge/` and `worker/` never import each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"contracts", "messaging", "storage", "edge", "worker", "devservices", "fleet_cli", "tests"}


def imported_roots(package: str) -> dict[str, set[str]]:
    """Top-level module names each file of ``package`` imports (relative imports count as the package)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        roots: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots.add(package if node.level else (node.module or "").split(".")[0])
        found[str(path.relative_to(ROOT))] = roots
    return found


@pytest.mark.parametrize(
    ("package", "allowed"),
    [("storage", {"storage", "minio", "urllib3"}), ("devservices", {"devservices"})],
)
def test_package_imports_only_what_it_may(package: str, allowed: set[str]) -> None:
    for path, roots in imported_roots(package).items():
        foreign = roots - allowed - set(sys.stdlib_module_names) - {"__future__"}
        assert not foreign, f"{path} imports {sorted(foreign)}"


@pytest.mark.parametrize(
    ("package", "ours_allowed"),
    [
        ("contracts", {"contracts"}),
        ("messaging", {"messaging", "contracts"}),
        ("edge", {"edge", "contracts", "messaging", "storage"}),
        ("worker", {"worker", "contracts", "messaging", "storage"}),
    ],
)
def test_packages_of_ours_import_only_the_layers_below(package: str, ours_allowed: set[str]) -> None:
    for path, roots in imported_roots(package).items():
        forbidden = (roots & OURS) - ours_allowed
        assert not forbidden, f"{path} imports {sorted(forbidden)}"


def test_contracts_hold_messages_and_names_not_broker_io() -> None:
    """No coroutine and no broker client in `contracts/`: declaring and publishing live in `messaging/`."""
    for path in sorted((ROOT / "contracts").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        coroutines = [n.name for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef)]
        assert not coroutines, f"{path.relative_to(ROOT)} does I/O: {coroutines}"
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert "RabbitBroker" not in names, f"{path.relative_to(ROOT)} imports a broker client"


def test_no_import_cycle_through_a_package_init() -> None:
    """A module that its package's `__init__` imports must not import from that package (`from pkg import
    x`): the two would import each other. Siblings import each other by their own paths."""
    for package in ("contracts", "messaging", "storage", "edge", "worker"):
        for init in sorted((ROOT / package).rglob("__init__.py")):
            own = ".".join(init.relative_to(ROOT).parent.parts)
            for name in _modules_imported_by(init, own):
                module = init.parent / f"{name}.py"
                if not module.exists():
                    continue
                for node in ast.walk(ast.parse(module.read_text(), str(module))):
                    if isinstance(node, ast.ImportFrom) and not node.level:
                        assert node.module != own, f"{module.relative_to(ROOT)} and {own} import each other"


def _modules_imported_by(init: Path, own: str) -> set[str]:
    """The package's own modules its `__init__` imports (`from pkg.module import …`)."""
    found = set()
    for node in ast.walk(ast.parse(init.read_text(), str(init))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{own}."):
            found.add(node.module.removeprefix(f"{own}.").split(".")[0])
    return found


MAX_MODULE_LINES = 320  # "about 300": a module longer than this holds more than one responsibility


def test_runtime_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT))
        for package in ("contracts", "messaging", "storage", "edge", "worker")
        for path in (ROOT / package).rglob("*.py")
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
    }
    assert not long, f"over {MAX_MODULE_LINES} lines: {sorted(long)}"


# Reaching into another object's `_private` members, allowed only here (each with its reason).
PRIVATE_REACH_ALLOWED = {
    ("edge/readmodel/store.py", "_create"),  # ReadModel.open calls its own new instance's step
    ("worker/consumers.py", "_queue_obj"),  # FastStream has no public pause (see the module)
    ("worker/consumers.py", "_consumer_tag"),
}


def test_no_class_touches_another_objects_private_members() -> None:
    found = set()
    for package in ("contracts", "messaging", "storage", "edge", "worker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                private = (
                    node.attr.startswith("_") and not node.attr.startswith("__")
                    if isinstance(node, ast.Attribute)
                    else False
                )
                if private and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.add((str(path.relative_to(ROOT)), node.attr))
    assert found <= PRIVATE_REACH_ALLOWED, sorted(found - PRIVATE_REACH_ALLOWED)


def test_the_worker_app_registers_named_handlers_not_closures() -> None:
    """Each handler of `worker/app.py` is a method of `Worker`, none defined inside another function."""
    tree = ast.parse((ROOT / "worker/app.py").read_text())
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    nested = [
        inner.name
        for outer in ast.walk(tree)
        if isinstance(outer, functions)
        for inner in ast.walk(outer)
        if inner is not outer and isinstance(inner, functions)
    ]
    assert not nested, f"handlers defined inside functions: {nested}"
