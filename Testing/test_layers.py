"""The library's imports run downhill: no two parts import each other, the lowest floor imports nothing of
the library, and the MRML adapter converts without running anything.

A part is a top-level package or module of DELICAITELib (``case``, ``bundle``, ``storage.py``…); the
imports are read from the source (``import`` and ``from … import`` at any depth, relative or absolute).
"""

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "DELICAITE" / "DELICAITELib"
LOWEST = {"errors", "jsonable", "storage", "progress", "recommendation"}


def is_module(dotted: str) -> bool:
    relative = LIBRARY.joinpath(*dotted.split(".")[1:])
    return relative.with_suffix(".py").is_file() or relative.is_dir()


def part_of(module: str) -> str:
    """DELICAITELib.case.engine -> case."""
    return module.split(".")[1] if module.count(".") else "__init__"


def imported_modules(path: Path) -> set[str]:
    """The DELICAITELib modules a file imports, as dotted names."""
    package = ["DELICAITELib", *path.relative_to(LIBRARY).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            # `from .. import x`: x is a module when a file or folder has its name, else a name of the package
            targets = [name] if node.module else [f"{name}.{a.name}" if is_module(f"{name}.{a.name}") else name
                                                  for a in node.names]
            found.update(t for t in targets if t.startswith("DELICAITELib"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("DELICAITELib."))
    return found


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        source = part_of(".".join(["DELICAITELib", *path.relative_to(LIBRARY).with_suffix("").parts]))
        for target in imported_modules(path):
            if part_of(target) != source:
                graph.setdefault(source, set()).add(part_of(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_two_parts_import_each_other():
    assert cycles(part_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_lowest_floor_imports_only_the_lowest_floor():
    graph = part_graph()
    for part in LOWEST:
        assert graph.get(part, set()) <= {"errors", "jsonable"}, (part, graph.get(part))


def test_the_mrml_adapter_converts_only():
    """mrml/ reads the typed case result; it never runs a case, loads a model or starts a job."""
    uses = set()
    for path in (LIBRARY / "mrml").rglob("*.py"):
        uses |= imported_modules(path)
    assert not {m for m in uses if m.startswith(("DELICAITELib.case.engine", "DELICAITELib.bundle",
                                                  "DELICAITELib.batch", "DELICAITELib.jobs", "DELICAITELib.model"))}
    assert "DELICAITELib.case.result" in uses


def test_model_files_live_below_the_models():
    """Segmentation, deep features and comparators store files through storage/, not through model/."""
    for folder in ("segmentation", "features", "cohort/comparators"):
        for path in (LIBRARY / folder).rglob("*.py"):
            assert not {m for m in imported_modules(path) if m.startswith("DELICAITELib.model")}, path
