"""The text-match index: one sealed segment's positional postings over an ``enable_match``
VARCHAR field (``text/postings.py``), kept in a file next to the segment.

Milvus builds this index (tantivy's) for every ``enable_match`` field without being asked,
and so does keeldb: the collection's catalog entry adds a ``TEXT_MATCH`` spec for each such
field (``index/params.py``'s ``text_match_spec``, keyed by the analyzer's params), and the
background index builder builds, writes, commits, loads, verifies and garbage-collects it
exactly like a vector index -- the crash-safety argument of an index build
(docs/crash-safety.md) is the same one, with the same crash points.

Why a file rather than a rebuild from the stored text at every open: building the
postings is tokenizing every row (about 4-5 us a short text in Python, the analyzer is
tantivy's), so a restart would re-tokenize every matchable text of the collection -- minutes
at tens of millions of rows -- before text_match is fast again; the file is memory-mapped
at open in milliseconds. It is derived data all the same: a missing, stale or damaged file
costs speed, never answers (the engine then builds the postings in memory from the
segment's text, and the builder writes a new file).

The index is not a vector index: ``search`` / ``range_search`` refuse. The engine reads
``postings`` (duck-typed: the engine imports no index implementation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from keeldb.errors import CorruptionError
from keeldb.index import sections
from keeldb.index.base import IndexKind
from keeldb.index.params import IndexSpec, SearchKnobs, text_analyzer_params
from keeldb.text import build_analyzer
from keeldb.text.postings import Postings, build_postings

MAGIC = b"KEELTXT1"
VERSION = 1
SECTIONS = (
    ("term_offsets", "<i8"),  # term j is term_bytes[term_offsets[j]:term_offsets[j+1]]
    ("term_bytes", "|u1"),  # the distinct tokens, UTF-8, ascending by bytes, concatenated
    ("term_ptr", "<i8"),  # term j's occurrences are entries [term_ptr[j], term_ptr[j+1])
    ("rows", "<i4"),  # of rows / positions: row numbers, ascending within a term,
    ("positions", "<i4"),  # and token positions (the analyzer's), ascending within a row
    ("null_rows", "<i4"),  # rows whose value is null, ascending
)


class TextIndex:
    """One segment's text-match postings; the class is the ``IndexKind``."""

    file_ext = "text"

    def __init__(self, spec: IndexSpec, postings: Postings) -> None:
        self.spec = spec
        self.postings = postings
        self.ntotal = postings.n_rows

    @classmethod
    def build(cls, spec: IndexSpec, column: Any) -> TextIndex:
        """From the segment's column (an Arrow array of strings), or from postings the
        engine already built in memory for the segment (the same analyzer: the spec's)."""
        if isinstance(column, Postings):
            return cls(spec, column)
        analyzer = build_analyzer(text_analyzer_params(spec))
        values = column.to_pylist() if isinstance(column, pa.Array | pa.ChunkedArray) else list(column)
        return cls(spec, build_postings(values, analyzer))

    def save(self, path: Path) -> tuple[int, int]:
        """Write and fsync the file (docs/formats.md, "Text-match index file")."""
        arrays = {name: getattr(self.postings, name) for name, _ in SECTIONS}
        header = {"version": VERSION, "rows": self.ntotal, "spec": self.spec.key}
        return sections.write(path, MAGIC, header, SECTIONS, arrays)

    @classmethod
    def load(cls, spec: IndexSpec, path: Path) -> TextIndex:
        header, arrays = sections.read(path, MAGIC, VERSION, "text-match index")
        rows = int(header["rows"])
        p = Postings(rows, **{name: arrays[name] for name, _ in SECTIONS})
        _check(path, p)
        return cls(spec, p)

    def search(self, q: Any, k: int, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("a text-match index answers text_match / phrase_match filters, not vector searches")

    def range_search(self, q: Any, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise TypeError("a text-match index answers text_match / phrase_match filters, not vector searches")


def _check(path: Path, p: Postings) -> None:
    """The pointer arrays' shape, checked in O(terms) at load, so that a file whose bytes
    are intact but inconsistent (written by other code) is refused, not read out of bounds."""
    t = len(p.term_offsets) - 1
    ok = (
        t >= 0
        and len(p.term_ptr) == t + 1
        and len(p.positions) == len(p.rows)
        and int(p.term_offsets[-1]) == len(p.term_bytes)
        and int(p.term_ptr[-1]) == len(p.rows)
        and (not len(p.rows) or (0 <= int(p.rows.min()) and int(p.rows.max()) < p.n_rows))
    )
    if not ok:
        raise CorruptionError(f"{path}: text-match index sections do not fit together")


TEXT: IndexKind = TextIndex  # what index/base.py's registry names
