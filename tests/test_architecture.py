"""The house rules, read off every product module's imports with ``ast`` (docs/architecture.md).

* Imports run one way: web -> resolvers -> schema -> loaders -> services -> stores -> foundation.
  A module may import its own layer and any layer below, never one above (type-only imports too).
* Only gateway/stores/** imports a database driver.
* Only gateway/web/** knows aiohttp and strawberry's view/Schema; strawberry at all only in
  schema/, resolvers/ and gateway/web/.
* Only gateway/config.py reads the environment.
* No placeholder packages: every package holds a module with code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("gateway", "schema", "resolvers", "loaders")

# Bottom first. A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "gateway",
            "gateway.config",
            "gateway.deadlines",
            "gateway.edge_settings",
            "gateway.setting_values",
            "gateway.errors",
            "gateway.models",
            "gateway.roles",
            "gateway.validation",
            "gateway.ops",  # metric definitions and timing: every layer reports into them
        ),
    ),
    ("stores", ("gateway.stores",)),
    (
        "services",
        (
            "gateway.services",
            "gateway.analytics",
            "gateway.cache",
            "gateway.jobs",
            "gateway.ingest",
            "gateway.embedded",
            "gateway.embeddings",
            "gateway.realtime",
            "gateway.security",
        ),
    ),
    ("loaders", ("loaders",)),
    ("schema", ("schema",)),
    ("resolvers", ("resolvers",)),
    ("web", ("gateway.web", "gateway.cli", "gateway.__main__")),
)
DRIVERS = ("pymongo", "bson", "motor", "duckdb", "pymilvus", "milvus_lite", "grpc", "redis", "hiredis")
WEB_ONLY = (
    "aiohttp",
    "strawberry.aiohttp",
    "strawberry.http",
    "strawberry.schema",
    "strawberry.extensions",
    "strawberry.subscriptions",
)
STRAWBERRY_ROOMS = ("schema", "resolvers", "gateway.web")
ENVIRONMENT = {"environ", "getenv", "putenv", "unsetenv", "environb", "getenvb"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> dict[str, Path]:
    return {_module_name(p): p for root in ROOTS for p in sorted((REPO / root).rglob("*.py"))}


MODULES = product_modules()


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, (prefix,)) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def imports_of(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import, wherever it stands (functions, TYPE_CHECKING blocks)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                # ``from gateway.cache import keys`` imports the module gateway.cache.keys.
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in MODULES else base


def test_every_product_module_is_in_a_layer():
    assert len(MODULES) > 50, "the walk found too few modules"
    unplaced = [m for m in MODULES if layer_of(m) is None]
    assert unplaced == [], f"add these modules' package to a layer in tests/test_architecture.py: {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module: str):
    own = layer_of(module)
    assert own is not None
    upward = []
    for line, imported in imports_of(module, MODULES[module]):
        target = layer_of(imported) if _within(imported, ROOTS) else None
        if target is not None and target > own:
            upward.append(f"line {line}: {imported} ({LAYERS[target][0]} is above {LAYERS[own][0]})")
    assert upward == [], f"{module} imports upward: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_drivers_web_and_strawberry_stay_in_their_rooms(module: str):
    wrong = []
    for line, imported in imports_of(module, MODULES[module]):
        if _within(imported, DRIVERS) and not _within(module, ("gateway.stores",)):
            wrong.append(f"line {line}: driver {imported} outside gateway/stores")
        if _within(imported, WEB_ONLY) and not _within(module, ("gateway.web",)):
            wrong.append(f"line {line}: {imported} outside gateway/web")
        if _within(imported, ("strawberry",)) and not _within(module, STRAWBERRY_ROOMS):
            wrong.append(f"line {line}: strawberry outside schema/, resolvers/ and gateway/web/")
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "strawberry"
            and node.attr == "Schema"
            and not _within(module, ("gateway.web",))
        ):
            wrong.append(f"line {node.lineno}: strawberry.Schema outside gateway/web")
    assert wrong == [], f"{module}: {wrong}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "gateway.config"))
def test_only_config_reads_the_environment(module: str):
    reads = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ENVIRONMENT
        ):
            reads.append(f"line {node.lineno}: os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            reads += [
                f"line {node.lineno}: from os import {a.name}" for a in node.names if a.name in ENVIRONMENT
            ]
    assert reads == [], f"{module} reads the environment (only gateway/config.py may): {reads}"


def test_no_placeholder_packages():
    packages = {p.parent for root in ROOTS for p in (REPO / root).rglob("__init__.py")}
    empty = [
        str(pkg.relative_to(REPO))
        for pkg in packages
        if not any(p.name != "__init__.py" for p in pkg.glob("*.py"))
        and not any((d / "__init__.py").exists() for d in pkg.iterdir() if d.is_dir())
        and not _has_code(pkg / "__init__.py")
    ]
    assert empty == [], f"packages without code: {empty}"


def _has_code(init: Path) -> bool:
    body = ast.parse(init.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def test_the_rules_catch_what_they_are_for(tmp_path: Path):
    """The walk itself: an upward import and a relative one are seen (guards against a silent no-op)."""
    probe = tmp_path / "probe.py"
    probe.write_text("from resolvers.query import Query\nfrom . import keys\n\ndef f():\n    import duckdb\n")
    found = {name for _, name in imports_of("gateway.cache.probe", probe)}
    assert {"resolvers.query", "gateway.cache.keys", "duckdb"} <= found
    assert layer_of("resolvers.query") > layer_of("gateway.cache.keys") > layer_of("gateway.stores.days")
