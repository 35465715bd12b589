"""The import rules of ARCHITECTURE.md, checked on the source: the tree must keep reading as the design."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, *, lazy: bool = False) -> set[str]:
    """Modules imported when ``path`` is imported (with ``lazy``, also inside functions), never
    counting those under ``if TYPE_CHECKING:``."""
    imported: set[str] = set()
    for node in statements(ast.parse(path.read_text()).body, lazy=lazy):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


def statements(body: list[ast.stmt], *, lazy: bool) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        found.append(node)
        if lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.If | ast.Try):
            found.extend(statements([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)],
                                    lazy=lazy))
    return found


def graph(package: str, *, lazy: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports. A module's own parent packages are left out:
    Python imports those first anyway, and ``from workers import tasks`` names a sibling."""
    modules = {module_name(path): path for path in (ROOT / package).rglob("*.py")}
    return {
        name: {target for target in top_level_imports(path, lazy=lazy) & modules.keys()
               if target != name and not name.startswith(f"{target}.")}
        for name, path in modules.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(edges.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(edges):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_no_import_circle_in_the_workers_even_through_lazy_imports():
    assert find_cycle(graph("workers", lazy=True)) is None


def test_no_import_circle_in_the_producer_when_loaded():
    assert find_cycle(graph("mailqueue")) is None


def test_the_producers_one_lazy_circle_is_message_to_mail():
    """Django's circle (message -> mail -> backends.base -> message), broken by one lazy import."""
    edges = graph("mailqueue", lazy=True)
    assert find_cycle(edges) is not None
    edges["mailqueue.message.model"].discard("mailqueue.mail")
    assert find_cycle(edges) is None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_producer_never_imports_the_workers_when_loaded():
    for path in (ROOT / "mailqueue").rglob("*.py"):
        offending = {name for name in top_level_imports(path) if name.split(".")[0] == "workers"}
        assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


def test_workers_use_only_the_producers_shared_vocabulary():
    allowed = ("mailqueue.conf", "mailqueue.defaults", "mailqueue.exceptions", "mailqueue.loading",
               "mailqueue.outcomes", "mailqueue.queue")
    for path in (ROOT / "workers").rglob("*.py"):
        for name in top_level_imports(path):
            if name.split(".")[0] == "mailqueue" and name != "mailqueue":
                assert name.startswith(allowed), f"{path.relative_to(ROOT)} imports {name}"


def test_message_model_does_not_know_the_queue():
    for path in (ROOT / "mailqueue" / "message").rglob("*.py"):
        for name in top_level_imports(path):
            assert not name.startswith(("mailqueue.queue", "mailqueue.backends")), f"{path.name} imports {name}"
