"""A mutated copy of the source tree: ``src/``, ``tests/`` and ``pyproject.toml`` copied to a
temporary directory, then the mutant's edits applied there — never to the checkout or the
installed package. Run with ``PYTHONPATH=<copy>/src`` (``env``), everything imports the copy:
the tests, ``keeldb chaos`` and the servers and children they start (they put the ``src``
their ``keeldb`` came from first on their own ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import py_compile
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


def apply(mutant: Mutant, root: Path) -> None:
    """Apply every edit of ``mutant`` to the copy at ``root``; raise MutantDrift if an edit's
    old text does not occur exactly once, and compile each edited file."""
    edited: set[Path] = set()
    for e in mutant.edits:
        path = root / e.path
        text = path.read_text()
        n = text.count(e.old)
        if n != 1:
            raise MutantDrift(
                f"mutant {mutant.name}: the text it replaces occurs {n} times in {e.path} (expected once): "
                f"the code moved; update tests/mutants/catalog.py\n--- text:\n{e.old}"
            )
        path.write_text(text.replace(e.old, e.new))
        edited.add(path)
    for path in edited:
        try:
            py_compile.compile(str(path), doraise=True)
        except py_compile.PyCompileError as err:
            raise MutantDrift(f"mutant {mutant.name}: {path.relative_to(root)} does not compile: {err}") from err


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
