"""A mutated copy of the source tree: ``src/``, ``tests/`` and ``pyproject.toml`` copied to a
temporary directory, then the mutant's edits applied there — never to the checkout or the
installed package. Run with ``PYTHONPATH=<copy>/src`` (``env``), everything imports the copy:
the tests, ``keeldb chaos`` and the servers and children they start (they put the ``src``
their ``keeldb`` came from first on their own ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.mutants.catalog import Mutant

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", ".hypothesis")


class MutantDrift(Exception):
    """A mutant no longer applies: the code it edits moved. Update tests/mutants/catalog.py."""


def copy_tree(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("src", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=IGNORE)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def mutated_sources(mutant: Mutant, root: Path = ROOT) -> dict[str, str]:
    """The text of every file ``mutant`` edits, edited (nothing is written): raise
    MutantDrift if an edit's old text does not occur exactly once in the file as it is under
    ``root``, or if an edited file does not compile."""
    texts: dict[str, str] = {}
    for e in mutant.edits:
        text = texts.get(e.path) or (root / e.path).read_text()
        n = text.count(e.old)
        if n != 1:
            raise MutantDrift(
                f"mutant {mutant.name}: the text it replaces occurs {n} times in {e.path} (expected once): "
                f"the code moved; update tests/mutants/catalog.py\n--- text:\n{e.old}"
            )
        texts[e.path] = text.replace(e.old, e.new)
    for path, text in texts.items():
        try:
            compile(text, path, "exec")
        except SyntaxError as err:
            raise MutantDrift(f"mutant {mutant.name}: {path} does not compile: {err}") from err
    return texts


def apply(mutant: Mutant, root: Path) -> None:
    """Apply ``mutant`` to the copy at ``root`` (never to the checkout: ``root`` must not be
    the repository itself)."""
    if root.resolve() == ROOT:
        raise ValueError("mutants are applied to a copy of the tree, never to the checkout")
    for path, text in mutated_sources(mutant, root).items():
        (root / path).write_text(text)


def mutated_copy(mutant: Mutant | None, dest: Path) -> Path:
    """A copy of the tree at ``dest`` with ``mutant`` applied (None: the unmutated control)."""
    copy_tree(dest)
    if mutant is not None:
        apply(mutant, dest)
    return dest


def env(root: Path) -> dict[str, str]:
    """The environment that makes a child import the copy at ``root``."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for k in ("KEELDB_CRASH_AT", "KEELDB_FAULTS"):
        e.pop(k, None)
    return e
