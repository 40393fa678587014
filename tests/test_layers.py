"""Layers depend downward only: the import graph of ``src/keeldb`` against the map at the top
of docs/architecture.md.

Every ``import keeldb.x`` / ``from keeldb.x import ...`` counts, also the ones inside
functions (a lazy import is still a dependency). A module may import its own package and
anything of a lower rank; the chaos package, which judges servers through pymilvus only,
may not import the engine at all.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "keeldb"
ARCHITECTURE = SRC.parent.parent / "docs" / "architecture.md"

# Lower ranks sit below higher ones. Leaf modules (rank 0) import nothing of keeldb's but
# each other.
RANKS: dict[str, int] = {
    "errors": 0,
    "telemetry": 0,
    "extras": 0,
    "datatype": 0,
    "fields": 0,
    "text": 0,
    "schema": 0,
    "names": 0,
    "access": 0,
    "storage": 1,
    "index": 2,
    "engine": 3,
    "client": 4,
    "cluster": 5,
    "server": 6,
    "testing": 7,
    "chaos": 8,
    "cli": 9,
}
# What the chaos package may use besides itself: it talks to servers through pymilvus.
CHAOS_MAY_IMPORT = {"errors", "testing", "storage.crash"}


def part_of(module: str) -> str:
    """``keeldb.storage.fs`` -> ``storage``; ``keeldb.client`` -> ``client``."""
    return module.split(".")[1] if module.count(".") else ""


def keeldb_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "keeldb":
                found += [f"keeldb.{a.name}" for a in node.names]
            elif node.module.startswith("keeldb."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("keeldb.")]
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def test_every_package_has_a_rank() -> None:
    parts = {part_of(name) for name, _ in modules()} - {""}
    assert parts <= set(RANKS), f"add {parts - set(RANKS)} to RANKS and to docs/architecture.md's map"


def test_layers_depend_downward_only() -> None:
    bad = []
    for name, path in modules():
        me = part_of(name)
        if not me:
            continue  # keeldb/__init__.py: the public names, imported lazily
        for imp in keeldb_imports(path):
            other = part_of(imp) or imp.split(".")[1]
            if other == me or other not in RANKS:
                continue
            if RANKS[other] > RANKS[me]:
                bad.append(f"{name} imports {imp} (rank {RANKS[other]} above {me}'s {RANKS[me]})")
            if me == "chaos" and not any(imp == f"keeldb.{ok}" or imp.startswith(f"keeldb.{ok}.") for ok in CHAOS_MAY_IMPORT):
                bad.append(f"{name} imports {imp}: chaos judges servers through pymilvus only")
    assert not bad, "\n".join(bad)


def test_the_map_in_the_docs_names_every_package() -> None:
    text = ARCHITECTURE.read_text()
    start = text.index("## The map")
    table = text[start : text.index("\n## ", start + 1)]
    for part in RANKS:
        assert re.search(rf"`{part}(/|\.py)`", table), f"docs/architecture.md's map does not name {part}"


def test_importing_keeldb_does_not_load_the_engine() -> None:
    """``keeldb chaos --target external`` and ``keeldb --help`` never pay for FAISS."""
    code = (
        "import sys, keeldb, keeldb.cli, keeldb.chaos.runner, keeldb.chaos.report\n"
        "heavy = [m for m in ('faiss', 'pyarrow', 'keeldb.engine', 'keeldb.client') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout
