"""The import rules of DESIGN.md ("Layout"), checked on the source with ``ast`` (nothing imported).

Layers, bottom up: io, spec, nn, progress -> data, flow -> models -> track, detect, visualize,
features -> engine -> serve, cli. An import only points down (or within its own package);
``deepvideo.data`` imports nothing from the engine; the modules of ``deepvideo.io`` import
each other without a cycle; no module imports another's private (``_x``) names. Imports
inside functions count like top-level ones: they run just the same, only later.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS = (
    ("io", "spec", "nn", "progress"),
    ("data", "flow"),
    ("models",),
    ("track", "detect", "visualize", "features"),
    ("engine",),
    ("serve", "cli", "__main__"),
)

def module_name(path: Path, root: Path) -> str:
    """``root/pkg/a/b.py`` -> ``pkg.a.b``; ``root/pkg/a/__init__.py`` -> ``pkg.a``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from ... import`` names, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def module_imports(root: Path, package: str) -> dict[str, set[str]]:
    """Every module of ``package`` under ``root`` -> the modules of ``package`` it imports,
    at any depth of its code (function-level imports included)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, path.name == "__init__.py")
                targets.add(base)
                # ``from pkg.sub import mod`` imports the module pkg.sub.mod as well
                targets.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files)
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def layer_of(module: str, layers=LAYERS) -> int:
    """Layer index of ``pkg.<part>...``; the bare package (its ``__init__``) is the bottom."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    for rank, names in enumerate(layers):
        if parts[1] in names:
            return rank
    raise AssertionError(f"{module}: package '{parts[1]}' is in no layer; add it to DESIGN.md's "
                         "'Layers' and to LAYERS in tests/test_imports.py")


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> set[tuple[str, str]]:
    """``(importer, imported)`` pairs where the imported module is in a higher layer."""
    rank = {m: layer_of(m, layers) for m in graph}  # every module must sit in a layer
    return {(m, t) for m, targets in graph.items() for t in targets if rank[t] > rank[m]}


def find_cycle(graph: dict[str, set[str]], prefix: str) -> list[str] | None:
    """One import cycle among the modules named ``prefix`` or ``prefix.*``, or None."""
    inside = {m for m in graph if m == prefix or m.startswith(prefix + ".")}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m] & inside):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(inside):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def private_imports(root: Path, package: str) -> set[tuple[str, str]]:
    """``(importer, "module.name")`` for every ``from module import _name`` across modules."""
    found = set()
    for path in sorted((root / package).rglob("*.py")):
        module = module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, path.name == "__init__.py")
                found.update((module, f"{base}.{a.name}") for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__") and base != module)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return module_imports(SRC, "deepvideo")


def test_the_walk_sees_the_known_edges(graph):
    # top-level and function-level imports of a real module (guards the walk against going blind)
    assert {"deepvideo.data.record", "deepvideo.spec", "deepvideo.data.samplers",
            "deepvideo.io"} <= graph["deepvideo.data.dataset"]
    assert "deepvideo.io.errors" in graph["deepvideo.io.reader"]


def test_data_imports_nothing_from_engine_models_or_cli(graph):
    bad = sorted((m, t) for m, targets in graph.items() if m.startswith("deepvideo.data")
                 for t in targets if t.split(".")[1] in ("engine", "models", "cli", "serve"))
    assert bad == [], f"deepvideo.data must not import these (move the code down a layer): {bad}"


def test_no_import_cycle_inside_io(graph):
    cycle = find_cycle(graph, "deepvideo.io")
    assert cycle is None, f"import cycle in deepvideo.io: {' -> '.join(cycle)}; move what both need " \
                          "into a module below them (e.g. deepvideo.io.meta)"


def test_imports_point_down_the_layers(graph):
    found = upward_imports(graph)
    assert not found, "imports of a higher layer (see DESIGN.md 'Layers'): " + ", ".join(
        f"{m} imports {t}" for m, t in sorted(found))


def test_no_private_name_crosses_modules():
    new = sorted(private_imports(SRC, "deepvideo"))
    assert new == [], "private names imported from another module (give them a public name): " + \
        ", ".join(f"{m} imports {name}" for m, name in new)


# -- the checker itself, on a tiny package with deliberately bad imports ---------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


FAKE_LAYERS = (("io",), ("data",), ("engine",))


def test_checker_finds_function_level_upward_and_relative_imports(tmp_path):
    _write(tmp_path, {
        "fake/__init__.py": "",
        "fake/io/__init__.py": "",
        "fake/io/reader.py": "import os\n",
        "fake/data/__init__.py": "from fake.io import reader\n",
        "fake/data/dataset.py": """
            def load():
                from fake.engine.loop import run  # hidden in a function
                return run
            """,
        "fake/data/ok.py": "from . import dataset\nfrom ..io.reader import os\n",
        "fake/engine/__init__.py": "",
        "fake/engine/loop.py": "import fake.data.dataset\n\ndef run():\n    return 0\n",
    })
    g = module_imports(tmp_path, "fake")
    assert g["fake.data"] == {"fake.io", "fake.io.reader"}
    assert g["fake.data.ok"] == {"fake.data", "fake.data.dataset", "fake.io.reader"}
    assert upward_imports(g, FAKE_LAYERS) == {("fake.data.dataset", "fake.engine.loop")}
    assert find_cycle(g, "fake.io") is None
    assert private_imports(tmp_path, "fake") == set()


def test_checker_finds_a_cycle_a_private_import_and_an_unplaced_package(tmp_path):
    _write(tmp_path, {
        "fake/__init__.py": "",
        "fake/io/__init__.py": "from fake.io.reader import Reader\n",
        "fake/io/meta.py": "",
        "fake/io/reader.py": "from fake.io.meta import x\n\ndef f():\n    import fake.io.probe\n",
        "fake/io/probe.py": "from fake.io.reader import Reader, _reason\nfrom fake.io.meta import x as _x\n",
        "fake/extra/thing.py": "",
    })
    g = module_imports(tmp_path, "fake")
    assert find_cycle(g, "fake.io") == ["fake.io.reader", "fake.io.probe", "fake.io.reader"]
    assert private_imports(tmp_path, "fake") == {("fake.io.probe", "fake.io.reader._reason")}
    with pytest.raises(AssertionError, match="'extra' is in no layer"):
        upward_imports(g, FAKE_LAYERS)
