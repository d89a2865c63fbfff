"""Migrations are expand/contract (issue: twins that share nothing): a release's migration runs while
the previous release still serves, so it may only add (tables, nullable or defaulted columns,
indexes) and widen. Removing or requiring something is a *contract* step, allowed only in a
migration that says so in its docstring ("Contract:"), shipped a release after nothing uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VERSIONS = Path(__file__).resolve().parents[2] / "ezla" / "migrations" / "versions"
FIRST_TWIN_RELEASE = "0005"  # the earlier ones ran before two releases ever served side by side
CONTRACTING = {"drop_column", "drop_table", "drop_constraint", "rename_table", "drop_index"}


def _upgrade_calls(tree: ast.Module) -> list[ast.Call]:
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    return [n for n in ast.walk(upgrade) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


MIGRATIONS = sorted(p for p in VERSIONS.glob("0*.py") if p.name[:4] >= FIRST_TWIN_RELEASE)


@pytest.mark.parametrize("path", MIGRATIONS, ids=[p.stem for p in MIGRATIONS])
def test_migrations_only_expand_unless_they_say_contract(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    contract = "Contract:" in (ast.get_docstring(tree) or "")
    for call in _upgrade_calls(tree):
        name = _name(call)
        if name in CONTRACTING or name.startswith("rename"):
            assert contract, f"{path.name}: {name} in upgrade() without a 'Contract:' note"
        if name == "add_column":  # op.add_column(table, Column) or batch.add_column(Column)
            column = next(a for a in call.args if isinstance(a, ast.Call) and _name(a) == "Column")
            kw = {k.arg: k.value for k in column.keywords}
            n = kw.get("nullable")
            if isinstance(n, ast.Constant) and n.value is False:
                assert "server_default" in kw or contract, f"{path.name}: an added required column needs a default"
        if name == "alter_column":
            keywords = {k.arg: k.value for k in call.keywords}
            n = keywords.get("nullable")
            assert not (isinstance(n, ast.Constant) and n.value is False) or contract, (
                f"{path.name}: making a column required is a contract step"
            )
