"""GEOMETRY: a shape given and returned as WKT (``POINT (1 2)``, ``POLYGON ((...))``, any
OGC type GEOS reads), stored as WKB in an Arrow binary column.

WKB rather than the WKT text: it is smaller, exact (no decimal round trip) and shapely
turns a whole column of it into geometries in one vectorised call, which is what the
spatial filters (``engine/expr_functions.py``) need. shapely (GEOS, the library PostGIS
and Milvus's own GDAL build on) does the parsing, writing and every predicate: a
hand-written geometry kernel would be worse at exactly the corner cases (boundaries,
collinear edges) that matter.

Text that does not parse as WKT is refused, naming the row. A shape that parses but is
not *valid* in the OGC sense (a self-intersecting polygon) is stored, as Milvus stores it;
``ST_ISVALID`` finds it. Output is GEOS's WKT at full precision, trailing zeros trimmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import shapely
from shapely.errors import GEOSException

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import FieldKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema


def parse_wkt(text: Any, what: str = "geometry") -> shapely.Geometry:
    """One WKT string as a shapely geometry, or InvalidArgument."""
    if not isinstance(text, str):
        raise InvalidArgument(f"{what} must be a WKT string, got {type(text).__name__}")
    try:
        g = shapely.from_wkt(text, on_invalid="raise")
    except (GEOSException, ValueError) as e:
        raise InvalidArgument(f"{what} {text!r:.80} is not valid WKT: {e}") from None
    if g is None:
        raise InvalidArgument(f"{what} {text!r:.80} is not valid WKT")
    return g


def to_wkt(geoms: Any) -> Any:
    return shapely.to_wkt(geoms, rounding_precision=-1, trim=True)


def geometries_of(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A WKB column as an object array of shapely geometries (None for null), in one
    vectorised call."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    wkb = np.array(col.to_pylist(), dtype=object)
    return shapely.from_wkb(wkb)


class Geometry(FieldKind):
    dtypes = (DataType.GEOMETRY,)

    def check_field(self, f: FieldSchema) -> None:
        if f.is_primary or f.is_partition_key:
            raise InvalidArgument(f"GEOMETRY field {f.name!r} cannot be a primary or partition key")

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return pa.binary()

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        return str(to_wkt(parse_wkt(value, f"the default of field {f.name!r}")))

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        """WKT text; stored WKB (bytes) is taken as well, which is how a kept value comes
        back through a partial update without a round trip through decimal text."""
        vals = np.array(list(values), dtype=object)
        is_text = np.array([isinstance(v, str) for v in vals], dtype=bool)
        is_wkb = np.array([isinstance(v, bytes) for v in vals], dtype=bool)
        bad = np.flatnonzero(~is_text & ~is_wkb & np.array([v is not None for v in vals], dtype=bool))
        if bad.size:
            raise self.type_error(f, vals[bad[0]], int(bad[0]))
        out = vals.copy()
        if is_text.any():
            try:
                geoms = shapely.from_wkt(vals[is_text], on_invalid="raise")
            except (GEOSException, ValueError):
                raise self._row_error(f, np.where(is_text, vals, None)) from None
            out[is_text] = shapely.to_wkb(geoms)
        if is_wkb.any():
            try:
                shapely.from_wkb(vals[is_wkb], on_invalid="raise")
            except (GEOSException, ValueError) as e:
                raise InvalidArgument(f"field {f.name!r}: invalid WKB: {e}") from None
        return pa.array(out.tolist(), type=pa.binary())

    def _row_error(self, f: FieldSchema, texts: np.ndarray) -> InvalidArgument:
        for i, t in enumerate(texts):
            if t is None:
                continue
            try:
                parse_wkt(t)
            except InvalidArgument as e:
                return InvalidArgument(f"row {i}: field {f.name!r}: {e.message}")
        return InvalidArgument(f"field {f.name!r}: invalid WKT")

    def output(self, f: FieldSchema, values: list[Any]) -> list[Any]:
        present = [i for i, v in enumerate(values) if v is not None]
        out: list[Any] = [None] * len(values)
        if present:
            wkt = to_wkt(shapely.from_wkb(np.array([values[i] for i in present], dtype=object)))
            for i, t in zip(present, wkt.tolist(), strict=True):
                out[i] = t
        return out
