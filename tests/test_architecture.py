"""The package's shape (ARCHITECTURE.md): the layers, each importing only its own and those below it; no import
cycle, function-level imports included; no function over 60 lines; no file over 500 lines."""

import ast
from pathlib import Path

import elbo

PACKAGE = Path(elbo.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set) -> set:
    """The package's modules that ``path`` imports anywhere in it, with the packages each import runs first (but
    not the module's own packages, which are being imported already when it runs)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules
    parts = name.split(".")
    return found - {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def test_no_module_imports_itself_through_others():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    assert graph["elbo.train"] >= {"elbo.runs", "elbo.evaluate"}, "the walk must see the package's imports"
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert not long, long


# ARCHITECTURE.md's layers, lowest first: (rank, group, the modules and packages in it). A module may import modules of
# its own group and of groups of a lower rank; groups of one rank (black-box VI and the kinds) do not import each
# other. The package itself (``elbo/__init__.py``, lazy re-exports by name) stands above everything.
LAYERS = [
    (0, "core", ["elbo.errors", "elbo._checks", "elbo._optional", "elbo._files", "elbo._compiler", "elbo._downloads",
                 "elbo._lazy",
                 "elbo.argtypes", "elbo.registry", "elbo.protocols", "elbo.bounds", "elbo.estimators", "elbo.families",
                 "elbo.exact", "elbo.distributed", "elbo.data", "elbo.ais"]),
    (1, "black-box VI", ["elbo.bbvi"]),
    (1, "kinds", ["elbo.kinds", "elbo.likelihoods", "elbo.models"]),
    (2, "application", ["elbo.configs", "elbo.runs", "elbo.schemas", "elbo.train", "elbo.evaluate", "elbo.surgery",
                        "elbo.diagnostics", "elbo.plots", "elbo.report", "elbo.demo"]),
    (3, "command line", ["elbo.cli", "elbo.__main__"]),
]


def _layer(module: str):
    """``(rank, group)`` of ``module``: its own entry in LAYERS or that of the package it lies in."""
    for rank, group, members in LAYERS:
        if any(module == m or module.startswith(f"{m}.") for m in members):
            return rank, group
    return None


def _graph() -> dict:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(paths)) for name, path in paths.items()}


def test_every_module_has_a_layer():
    assert [name for name in _graph() if name != "elbo" and _layer(name) is None] == []


def test_no_module_imports_a_layer_above_its_own_or_beside_it():
    upward = []
    for name, imported in _graph().items():
        if name == "elbo":
            continue
        rank, group = _layer(name)
        for target in imported - {"elbo"}:
            target_rank, target_group = _layer(target)
            if target_group != group and target_rank >= rank:
                upward.append(f"{name} ({group}) imports {target} ({target_group})")
    assert not upward, upward


def test_the_layer_check_sees_an_upward_import():
    """The check itself: a kind's module importing the command line is one (as the options modules once did)."""
    rank, group = _layer("elbo.models.images.options")
    assert (rank, group) == (1, "kinds") and _layer("elbo.cli._common")[0] > rank
    assert _layer("elbo.bbvi.methods.advi") == (1, "black-box VI") and _layer("elbo.bounds") == (0, "core")


def test_no_file_is_longer_than_500_lines():
    long = [f"{path.relative_to(PACKAGE)}: {n}" for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 500]
    assert not long, long
