"""The package keeps its shape: persistence lives in ``digest/store/`` alone, and no
module grows past what a newcomer can read (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "digest"
STORE = PACKAGE / "store"
# Session and Connection methods that run SQL; on any other object these names are rare
# enough in this code base that a hit is worth a look.
SQL_CALLS = {"execute", "scalar", "scalars", "add_all", "bulk_insert_mappings", "exec_driver_sql"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if STORE not in p.parents)


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (imports there are for hints only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _sql_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hints_only = _type_checking_blocks(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in hints_only:
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            relative_tables = isinstance(node, ast.ImportFrom) and (node.module or "").endswith(
                "store.tables"
            )
            if any(n.split(".")[0] == "sqlalchemy" for n in names) or relative_tables:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {names[0]}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
            and "session" in ast.unparse(node.func.value).lower()
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} runs SQL")
    return found


def test_no_sql_outside_the_store() -> None:
    found = [use for path in _modules() for use in _sql_uses(path)]
    assert not found, "SQL belongs in digest/store/:\n" + "\n".join(found)


def test_no_module_is_longer_than_600_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) >= 600
    }
    assert not long, f"split these by what their parts are about: {long}"
