"""Release trees: copies of the checkout with a migration more, and the contraction guard."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest

from stack.local import expand_contract
from stack.local.release_trees import (
    ContractTooEarly,
    ReleaseTree,
    TreeChangeFailed,
    contract_blockers,
    contractions,
    refuse_early_contract,
    revisions_of,
)
from stack.local.workspace import PROJECT_ROOT

FIRST = '''revision = "0001"
down_revision = None


def upgrade() -> None:
    pass
'''


def small_source(root: Path) -> Path:
    versions = root / "services" / "shop" / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_first.py").write_text(FIRST)
    (root / "services" / "shop" / "models.py").write_text("A = 1\nB = 2\nA2 = 1\n")
    cache = root / "services" / "shop" / "__pycache__"
    cache.mkdir()
    (cache / "models.cpython-311.pyc").write_bytes(b"\0")
    (root / ".venv").mkdir()
    return root


def test_a_tree_copies_services_only_without_caches(tmp_path: Path) -> None:
    tree = ReleaseTree.copy_of(small_source(tmp_path / "src"), tmp_path / "tree")
    assert sorted(p.name for p in tree.root.iterdir()) == ["services"]
    assert not list(tree.root.rglob("__pycache__"))
    with pytest.raises(FileExistsError):
        ReleaseTree.copy_of(tmp_path / "src", tmp_path / "tree")


def test_migrations_chain_onto_the_head(tmp_path: Path) -> None:
    tree = ReleaseTree.copy_of(small_source(tmp_path / "src"), tmp_path / "tree")
    assert tree.head("shop") == "0001"
    tree.add_migration("shop", "expand_x", "Expand.", "op.add_column('t', sa.Column('x'))",
                       "op.drop_column('t', 'x')")
    tree.add_migration("shop", "contract_x", "Contract.", "pass", "pass", contracts="expand_x")
    assert tree.head("shop") == "contract_x"
    assert revisions_of(tree.service("shop")) == {"0001", "expand_x", "contract_x"}
    assert contractions(tree.root) == {"shop": {"contract_x": "expand_x"}}
    for path in (tree.service("shop") / "migrations" / "versions").glob("*.py"):
        py_compile.compile(str(path), doraise=True)


def test_a_migration_that_cannot_chain_is_refused(tmp_path: Path) -> None:
    tree = ReleaseTree.copy_of(small_source(tmp_path / "src"), tmp_path / "tree")
    with pytest.raises(TreeChangeFailed, match="already has"):
        tree.add_migration("shop", "0001", "Again.", "pass", "pass")
    with pytest.raises(TreeChangeFailed, match="do not contain"):
        tree.add_migration("shop", "contract_y", "Contract.", "pass", "pass",
                           contracts="expand_y")
    versions = tree.service("shop") / "migrations" / "versions"
    (versions / "0002_branch.py").write_text(FIRST.replace('"0001"', '"0002"'))
    with pytest.raises(TreeChangeFailed, match="2 heads"):
        tree.head("shop")


def test_a_code_change_applies_exactly_once_or_not_at_all(tmp_path: Path) -> None:
    tree = ReleaseTree.copy_of(small_source(tmp_path / "src"), tmp_path / "tree")
    tree.replace("services/shop/models.py", "B = 2\n", "B = 3\n")
    assert "B = 3" in (tree.root / "services/shop/models.py").read_text()
    with pytest.raises(TreeChangeFailed, match="found it 0 times"):
        tree.replace("services/shop/models.py", "C = 4\n", "C = 5\n")
    with pytest.raises(TreeChangeFailed, match="found it 2 times"):
        tree.replace("services/shop/models.py", "= 1\n", "= 9\n")


def test_a_contraction_waits_until_no_release_lacks_its_expansion(tmp_path: Path) -> None:
    source = small_source(tmp_path / "src")
    expand = ReleaseTree.copy_of(source, tmp_path / "expand")
    expand.add_migration("shop", "expand_x", "Expand.", "pass", "pass")
    contract = ReleaseTree.copy_of(expand.root, tmp_path / "contract")
    contract.add_migration("shop", "contract_x", "Contract.", "pass", "pass",
                           contracts="expand_x")
    assert contract_blockers(contract.root, {"blue (v1)": source, "green (v2)": expand.root}) \
        == ["blue (v1) runs shop without expand_x, which contract_x contracts"]
    with pytest.raises(ContractTooEarly, match="blue \\(v1\\)"):
        refuse_early_contract(contract.root, {"blue (v1)": source})
    refuse_early_contract(contract.root, {"green (v2)": expand.root})
    refuse_early_contract(expand.root, {"blue (v1)": source})  # an expansion goes anywhere


def test_the_user_service_expansion_and_contraction_fit_the_checkout(tmp_path: Path) -> None:
    """Fails when the checkout's user service moved on and the recipe no longer applies."""
    contract = expand_contract.build_contract(PROJECT_ROOT, tmp_path / "contract")
    head = expand_contract.checkout_head(PROJECT_ROOT)
    assert contract.head("user") == expand_contract.CONTRACTION
    assert {head, expand_contract.EXPANSION} <= contract.revisions("user")
    for changed in contract.root.joinpath("services", "user").rglob("*.py"):
        py_compile.compile(str(changed), doraise=True)
    assert expand_contract.DEFAULT_LOCALE in expand_contract.CONTRACT_UPGRADE
    assert contract_blockers(contract.root, {"checkout": PROJECT_ROOT}) != []


def test_a_failed_recipe_leaves_no_tree(tmp_path: Path) -> None:
    source = small_source(tmp_path / "src")
    with pytest.raises(TreeChangeFailed):
        expand_contract.build_expand(source, tmp_path / "expand")
    assert not (tmp_path / "expand").exists()
