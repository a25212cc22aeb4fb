"""The package's layout, read with `ast` (nothing is imported): module size, docstrings, `__all__`, import cycles.

The runtime import graph holds module-level imports and imports inside functions, not those under
`if TYPE_CHECKING:`. The only cycle allowed is data <-> view: a module imports its view lazily
inside its `_repr_*_` methods (and `__repr__`) while the view imports the data type at module level;
likewise `FusionResult.follow_up` reaches the engine that made it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fusion_magic"
MAX_LINES = 350
# The stubs through which a data type reaches what works on it: its views (`_repr_*_`, `__repr__`)
# and `follow_up`, which hands the result back to the engine that made it.
REPR = re.compile(r"^(_repr_\w+_|__repr__|follow_up|cross_examine|resolve|ablate)$")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    source: str  # the module that imports
    target: str  # the package module imported
    line: int
    function: str | None  # the innermost enclosing function, None at module level

    @property
    def lazy(self) -> bool:
        return self.function is not None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    "The package modules an import statement in ``module`` loads (relative levels resolved)."
    if isinstance(node, ast.Import):  # `import fusion_magic.x.y` loads the deepest package module it names
        known = ([m for m in MODULES if alias.name == m or alias.name.startswith(m + ".")] for alias in node.names)
        return [max(names, key=len) for names in known if names]
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    targets = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in MODULES:  # `from . import x`, `from .pkg import mod`
            targets.append(sub)
        elif base in MODULES:
            targets.append(base)
    return list(dict.fromkeys(targets))


def _imports(module: str) -> list[Import]:
    "Every runtime import of a package module in ``module``, with where it sits."
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:  # the `else:` of a TYPE_CHECKING block runs
                    visit_one(other, function)
                continue
            visit_one(child, function)

    def visit_one(node: ast.AST, function: str | None) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _resolve(module, node):
                # A package's lazy import of its own submodule is a facade, not a dependency: the
                # submodule cannot load without its package anyway.
                if target != module and not (function and target.startswith(module + ".")):
                    found.append(Import(module, target, node.lineno, function))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        visit(node, function)

    visit(ast.parse(MODULES[module].read_text(encoding="utf-8")), None)
    return found


def _graph() -> dict[str, dict[str, list[Import]]]:
    "module -> imported module -> the import sites."
    graph: dict[str, dict[str, list[Import]]] = {m: {} for m in MODULES}
    for module in MODULES:
        for site in _imports(module):
            graph[module].setdefault(site.target, []).append(site)
    return graph


def _cycles(graph: dict[str, dict[str, list[Import]]]) -> list[frozenset[str]]:
    "The strongly connected components with more than one module (Tarjan's algorithm)."
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


def _describe(component: frozenset[str], graph: dict[str, dict[str, list[Import]]]) -> str:
    edges = []
    for source in sorted(component):
        for target, sites in sorted(graph[source].items()):
            if target in component:
                where = ", ".join(f"line {s.line}" + (f" in {s.function}()" if s.lazy else "") for s in sites)
                edges.append(f"{source} -> {target} ({where})")
    return "; ".join(edges)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_the_line_limit(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(PACKAGE.parent)} has {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_states_its_boundary_and_exports(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    path = MODULES[module].relative_to(PACKAGE.parent)
    assert ast.get_docstring(tree), f"{path} has no module docstring"
    declared = any(
        isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in tree.body
    )
    assert declared, f"{path} has no __all__"


def test_no_import_cycle_beyond_data_and_view() -> None:
    "Every cycle must go through a data type's stub import: without those, none may remain."
    plain = _without_stubs(_graph())
    problems = [f"cycle {sorted(c)} not through a stub: {_describe(c, plain)}" for c in _cycles(plain)]
    assert not problems, "\n".join(problems)


def _stub(site: Import) -> bool:
    return site.lazy and bool(REPR.match(site.function or ""))


def _without_stubs(graph: dict[str, dict[str, list[Import]]]) -> dict[str, dict[str, list[Import]]]:
    "``graph`` without the stub imports (the edges left must form no cycle)."
    plain = {m: {t: [s for s in ss if not _stub(s)] for t, ss in out.items()} for m, out in graph.items()}
    return {m: {t: ss for t, ss in out.items() if ss} for m, out in plain.items()}


def test_only_a_data_types_stubs_may_close_a_cycle() -> None:
    "The cycle check itself: a cycle closed by a stub is allowed, one closed by any other import is not."
    stub = Import("data", "view", 9, "_repr_html_")
    other = Import("data", "view", 9, "from_dict")
    back = Import("view", "data", 1, None)
    allowed = {"data": {"view": [stub]}, "view": {"data": [back]}}
    refused = {"data": {"view": [other]}, "view": {"data": [back]}}
    assert _cycles(allowed) == _cycles(refused) == [frozenset({"data", "view"})]
    assert _cycles(_without_stubs(allowed)) == []
    assert _cycles(_without_stubs(refused)) == [frozenset({"data", "view"})]


# -- the reader itself, on small synthetic cases --------------------------------------------------------


def test_relative_imports_resolve_to_package_modules() -> None:
    def targets(module: str, source: str) -> list[str]:
        node = ast.parse(source).body[0]
        assert isinstance(node, (ast.Import, ast.ImportFrom))
        return _resolve(module, node)

    assert targets("fusion_magic._fronts.magic", "from . import display, session") == [
        "fusion_magic._fronts.display",
        "fusion_magic._fronts.session",
    ]
    assert targets("fusion_magic._fronts.magic", "from .._base.config import PRESETS") == ["fusion_magic._base.config"]
    assert targets("fusion_magic.emulator.server", "from .._base import scrub") == ["fusion_magic._base.scrub"]
    assert targets("fusion_magic.emulator.server", "from . import wire") == ["fusion_magic.emulator.wire"]
    assert targets("fusion_magic.emulator", "from .wire import payload") == ["fusion_magic.emulator.wire"]
    assert targets("fusion_magic.emulator.server", "from .. import Fusion") == ["fusion_magic"]
    assert targets("fusion_magic._fronts.magic", "import fusion_magic._base.config") == ["fusion_magic._base.config"]
    assert targets("fusion_magic._fronts.magic", "import json") == []


def test_implementation_modules_are_private() -> None:
    "Every module is private (`_name`, or inside a private package) but the package, its CLI and the emulator."
    public = {"fusion_magic", "fusion_magic.__main__"}
    exposed = [
        m
        for m in MODULES
        if m not in public
        and not m.startswith("fusion_magic.emulator")
        and not any(part.startswith("_") for part in m.split(".")[1:])
    ]
    assert not exposed, f"make these private (a leading underscore): {exposed}"


def test_type_checking_imports_are_not_runtime_edges() -> None:
    sites = {(s.target, s.function) for s in _imports("fusion_magic._fronts.magic")}
    assert ("fusion_magic._base.settings", None) in sites  # module level
    assert ("fusion_magic._fronts.commands", "fusion_line") in sites  # lazy, inside the line magic
    assert not any(target == "fusion_magic._fusion" and function is None for target, function in sites)


def test_cycles_are_found() -> None:
    site = Import("a", "b", 1, None)
    graph = {"a": {"b": [site]}, "b": {"c": [site]}, "c": {"a": [site]}, "d": {"a": [site]}}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]
    assert _cycles({"a": {"b": [site]}, "b": {}}) == []
