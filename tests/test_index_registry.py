"""Index kinds sit behind one interface: the engine names only ``keeldb.index.base``, and
every index type resolves to an implementation that builds, saves, loads and searches."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from keeldb.index.base import build_index, index_kind, load_index
from keeldb.index.params import ANN_TYPES, SearchKnobs, index_spec

ENGINE = Path(__file__).resolve().parents[1] / "src" / "keeldb" / "engine"


def test_the_engine_imports_no_index_implementation() -> None:
    for path in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keeldb.index"):
                assert node.module in ("keeldb.index.base", "keeldb.index.params"), f"{path.name}: {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith(("faiss", "keeldb.index.faiss")) for a in node.names), path.name


@pytest.mark.parametrize("index_type", [*ANN_TYPES, "AUTOINDEX"])
def test_every_type_builds_saves_loads_and_searches_within_the_bitmap(tmp_path: Path, index_type: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    spec = index_spec(index_type, "L2", 16, {"nlist": 8} if index_type != "HNSW" else {})
    built = build_index(spec, x)
    path = tmp_path / f"idx.{index_kind(spec).file_ext}"
    size, _ = built.save(path)
    assert size == path.stat().st_size
    index = load_index(spec, path)
    assert index.ntotal == 2000 and index.spec == spec
    allowed = np.zeros(2000, dtype=bool)
    allowed[::3] = True  # only every third row may be returned
    d, rows = index.search(x[:4], 5, SearchKnobs(nprobe=8, ef=64), np.packbits(allowed, bitorder="little"))
    assert d.shape == rows.shape == (4, 5)
    assert all(allowed[r] for r in rows.ravel() if r >= 0)
