"""The package's layout, read with `ast` (nothing is imported): module size, docstrings, `__all__`, layers.

Every import counts: at module level, inside functions and under `if TYPE_CHECKING:` (a type-only
import is still a dependency a reader has to follow). The package is cut into layers, listed in
`LAYERS` highest first; a module may import its own unit (subpackage or top-level module) and any
layer below its own, never one above, and units side by side in one layer never import each other.
The one exception: a value reaching its own view (`_render`) from inside a display method
(`_repr_*_`, `__repr__`, or `chart`, which draws the value as a figure).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fusion_magic"
MAX_LINES = 350

# Highest first. `a | b`: independent units in one layer (neither imports the other).
LAYERS = [
    "fusion_magic.__main__",  # the command line
    "fusion_magic | emulator",  # the public API (lazy names); the test server, which imports nothing of ours
    "_fronts",  # where people reach a Fusion: magics, widget, serve, MCP
    "_fusion",  # the facade: `Fusion` builds the settings value and hands it to the engine
    "_studies",  # deliberations measured: compare, grading
    "_engine",  # one deliberation over HTTP and its steps
    "_tools",  # what a panel member may call
    "_render",  # the views, and the live progress they draw
    "_judge",  # reading a judge's reply, no network
    "_values | _local",  # what a deliberation returns; the local model server
    "_base",  # what a run is asked and the words for it
]
# A value's display methods: the only imports that may climb, and only into the views.
STUB = re.compile(r"^(_repr_\w+_|__repr__|chart)$")
VIEWS = "_render"


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    "The layer unit a module belongs to: its top-level subpackage or module (`fusion_magic` for the package)."
    parts = module.split(".")
    if len(parts) == 1:
        return "fusion_magic"
    return "fusion_magic.__main__" if parts[1] == "__main__" else parts[1]


def _layer_table() -> dict[str, int]:
    return {u.strip(): i for i, layer in enumerate(LAYERS) for u in layer.split("|")}


LAYER = _layer_table()


@dataclass(frozen=True)
class Import:
    source: str  # the module that imports
    target: str  # the package module imported
    line: int
    function: str | None  # the innermost enclosing function, None at module level
    type_checking: bool = False  # under `if TYPE_CHECKING:`

    @property
    def lazy(self) -> bool:
        return self.function is not None

    def where(self) -> str:
        how = f" in {self.function}()" if self.lazy else ""
        return (
            f"{self.source} -> {self.target} (line {self.line}{how}{', TYPE_CHECKING' if self.type_checking else ''})"
        )


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
    "Every import of a package module in ``module``: module level, in functions, under TYPE_CHECKING."
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for inner in child.body:
                    visit_one(inner, function, True)
                for other in child.orelse:
                    visit_one(other, function, typing_only)
                continue
            visit_one(child, function, typing_only)

    def visit_one(node: ast.AST, function: str | None, typing_only: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _resolve(module, node):
                # A package's lazy import of its own submodule is a facade, not a dependency: the
                # submodule cannot load without its package anyway.
                if target != module and not (function and target.startswith(module + ".")):
                    found.append(Import(module, target, node.lineno, function, typing_only))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        visit(node, function, typing_only)

    visit(ast.parse(MODULES[module].read_text(encoding="utf-8")), None, False)
    return found


def _stub(site: Import) -> bool:
    "A value reaching its own view from a display method."
    return site.lazy and bool(STUB.match(site.function or "")) and unit(site.target) == VIEWS


def _graph(keep=lambda site: True) -> dict[str, dict[str, list[Import]]]:
    "module -> imported module -> the import sites (those ``keep`` accepts)."
    graph: dict[str, dict[str, list[Import]]] = {m: {} for m in MODULES}
    for module in MODULES:
        for site in _imports(module):
            if keep(site):
                graph[module].setdefault(site.target, []).append(site)
    return graph


def _cycles(graph: dict[str, dict[str, list[Import]]]) -> list[frozenset[str]]:
    "The strongly connected components with more than one node (Tarjan's algorithm)."
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
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


def _units(graph: dict[str, dict[str, list[Import]]]) -> dict[str, dict[str, list[Import]]]:
    "The module graph folded onto layer units (imports inside one unit dropped)."
    folded: dict[str, dict[str, list[Import]]] = {unit(m): {} for m in graph}
    for source, out in graph.items():
        for target, sites in out.items():
            if unit(source) != unit(target):
                folded[unit(source)].setdefault(unit(target), []).extend(sites)
    return folded


def climbs(site: Import) -> bool:
    "Whether an import goes up a layer, or sideways to an independent unit of the same layer."
    a, b = unit(site.source), unit(site.target)
    return a != b and LAYER[b] <= LAYER[a]


# -- the checks ---------------------------------------------------------------------------------------


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


def test_every_module_has_a_layer() -> None:
    homeless = sorted({unit(m) for m in MODULES} - set(LAYER))
    assert not homeless, f"put these in LAYERS (and the layer's docstring): {homeless}"


def test_the_top_level_holds_a_handful_of_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 4, f"modules belong in a subpackage by role, not at the top: {top}"


def test_imports_go_one_way_down() -> None:
    "Counting every import, none climbs a layer or crosses to a sibling, but a value's display stubs."
    wrong = [
        s.where() for out in _graph(lambda s: not _stub(s)).values() for ss in out.values() for s in ss if climbs(s)
    ]
    assert not wrong, "imports against the layers (see LAYERS):\n" + "\n".join(wrong)


def test_no_cycle_between_units() -> None:
    "Counting every import but the display stubs, the subpackages' graph has no cycle."
    units = _units(_graph(lambda s: not _stub(s)))
    problems = [sorted(c) for c in _cycles(units)]
    assert not problems, f"cycles between units: {problems}"


def test_no_cycle_between_modules_at_run_time() -> None:
    "Without the display stubs and type-only imports, no two modules need each other (inside a unit too)."
    plain = _graph(lambda s: not _stub(s) and not s.type_checking)
    problems = [
        "; ".join(s.where() for m in sorted(c) for t, ss in plain[m].items() if t in c for s in ss)
        for c in _cycles(plain)
    ]
    assert not problems, "\n".join(problems)


def _may_import(text: str) -> list[str]:
    match = re.search(r"May import:(.*?)\.\s", text + " ", re.DOTALL)
    assert match, "no 'May import: ...' sentence"
    said = match.group(1).strip()
    return [] if said.startswith("nothing") else [u.strip() for u in said.replace("\n", " ").split(",")]


@pytest.mark.parametrize("package", sorted(u for u in LAYER if u.startswith("_") and (PACKAGE / u).is_dir()))
def test_each_subpackage_says_what_it_may_import(package: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8"))) or ""
    below = [u.strip() for layer in LAYERS[LAYER[package] + 1 :] for u in layer.split("|")]
    assert _may_import(docstring) == below, f"{package}/__init__.py: its 'May import:' must list {below}"


# -- the reader itself, on small synthetic cases --------------------------------------------------------


def test_only_a_values_display_stubs_may_climb() -> None:
    stub = Import("fusion_magic._values.result", "fusion_magic._render.html", 9, "_repr_html_")
    other = Import("fusion_magic._values.result", "fusion_magic._render.html", 9, "from_dict")
    to_engine = Import("fusion_magic._values.result", "fusion_magic._engine.panel", 9, "__repr__")
    assert _stub(stub) and not _stub(other) and not _stub(to_engine)
    assert climbs(other) and climbs(to_engine)
    assert not climbs(Import("fusion_magic._engine.panel", "fusion_magic._values.result", 1, None))
    sideways = Import("fusion_magic._values.result", "fusion_magic._local.server", 1, None)
    assert climbs(sideways)


def test_relative_imports_resolve_to_package_modules() -> None:
    def targets(module: str, source: str) -> list[str]:
        node = ast.parse(source).body[0]
        assert isinstance(node, (ast.Import, ast.ImportFrom))
        return _resolve(module, node)

    magic = "fusion_magic._fronts.magic"
    assert targets(magic, "from . import display, session") == [
        "fusion_magic._fronts.display",
        "fusion_magic._fronts.session",
    ]
    assert targets(magic, "from .._base.config import PRESETS") == ["fusion_magic._base.config"]
    assert targets(magic, "from .._base import scrub") == ["fusion_magic._base.scrub"]
    assert targets("fusion_magic.emulator.server", "from . import wire") == ["fusion_magic.emulator.wire"]
    assert targets("fusion_magic.emulator", "from .wire import payload") == ["fusion_magic.emulator.wire"]
    assert targets("fusion_magic.emulator.server", "from .. import Fusion") == ["fusion_magic"]
    assert targets(magic, "import fusion_magic._base.config") == ["fusion_magic._base.config"]
    assert targets(magic, "import json") == []


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


def test_every_kind_of_import_is_counted() -> None:
    sites = {(s.target, s.function, s.type_checking) for s in _imports("fusion_magic._fronts.magic")}
    assert ("fusion_magic._base.settings", None, False) in sites  # module level
    assert ("fusion_magic._fronts.commands", "fusion_line", False) in sites  # lazy, inside the line magic
    assert ("fusion_magic._fusion", None, True) in sites  # under TYPE_CHECKING


def test_cycles_are_found() -> None:
    site = Import("a", "b", 1, None)
    graph = {"a": {"b": [site]}, "b": {"c": [site]}, "c": {"a": [site]}, "d": {"a": [site]}}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]
    assert _cycles({"a": {"b": [site]}, "b": {}}) == []


def test_units_are_top_level_parts() -> None:
    assert unit("fusion_magic") == "fusion_magic"
    assert unit("fusion_magic.__main__") == "fusion_magic.__main__"
    assert unit("fusion_magic._engine.panel") == "_engine"
    assert unit("fusion_magic._fusion") == "_fusion"
    assert unit("fusion_magic.emulator.wire") == "emulator"


# -- the architecture page matches the house ------------------------------------------------------------

ARCHITECTURE = PACKAGE.parent / "docs" / "ARCHITECTURE.md"


def _section(title: str) -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_architecture_page_follows_a_prompt_through_real_modules_once_each() -> None:
    trace = _section("One prompt")
    named = re.findall(r"(?:fusion_magic/)?((?:_\w+/)?(?:_?\w+)\.py)\b", trace)
    assert len(named) >= 30, named
    missing = [path for path in named if not (PACKAGE / path).is_file()]
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"
    twice = sorted({path for path in named if named.count(path) > 1})
    assert not twice, f"the prompt passes each module once, yet the page names these twice: {twice}"


def test_the_architecture_page_lists_every_module_where_it_lives() -> None:
    table = _section("Where things live")
    rows = dict(re.findall(r"^\| `?([\w/]+)`? \| (.*) \|$", table, re.M))
    unlisted = []
    for module in MODULES:
        parts = module.split(".")
        if len(parts) < 3 or parts[1] in ("emulator",) or parts[-1] == "__init__":
            continue
        folder, leaf = parts[1] + "/", parts[-1]
        if not re.search(rf"`{leaf}`", rows.get(folder, "")):
            unlisted.append(f"{folder}{leaf}")
    assert not unlisted, f"docs/ARCHITECTURE.md's table does not list: {unlisted}"
    assert set(LAYER) - {"fusion_magic", "fusion_magic.__main__", "_fusion", "emulator"} <= {
        r.rstrip("/") for r in rows
    }
