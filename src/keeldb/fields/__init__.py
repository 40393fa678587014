"""Field kinds: what keeldb knows about each family of Milvus data types.

One module a kind (``numeric``, ``varchar``, ``json``, ``float_vector``, ...), each a
:class:`~keeldb.fields.base.FieldKind`: which schema parameters it takes, how a column of
user values is checked and stored as Arrow, and how stored values are read back. Adding a
data type is adding a module here and registering it below; the write path, the schema and
the output path ask the registry, never a chain of ``if dtype == ...``.

How values travel over Milvus's wire is the server's business (``keeldb.server.convert``):
the embedded path never imports pymilvus.
"""

from __future__ import annotations

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.array import Array
from keeldb.fields.base import FieldKind, VectorKind
from keeldb.fields.binary_vector import BinaryVector
from keeldb.fields.float_vector import FloatVector
from keeldb.fields.geometry import Geometry
from keeldb.fields.half_vector import BFloat16Vector, Float16Vector
from keeldb.fields.int8_vector import Int8Vector
from keeldb.fields.json import Json
from keeldb.fields.numeric import Bool, Floating, Integer
from keeldb.fields.sparse_vector import SparseFloatVector
from keeldb.fields.timestamptz import Timestamptz
from keeldb.fields.varchar import Varchar

_VECTOR_KINDS = (FloatVector(), Float16Vector(), BFloat16Vector(), Int8Vector(), BinaryVector(), SparseFloatVector())
_KINDS: dict[DataType, FieldKind] = {}
for _kind in (Bool(), Integer(), Floating(), Varchar(), Json(), Array(), Timestamptz(), Geometry(), *_VECTOR_KINDS):
    for _dtype in _kind.dtypes:
        _KINDS[_dtype] = _kind


def kind_of(dtype: DataType) -> FieldKind:
    """The kind that handles ``dtype``; a type keeldb does not store is refused here, at
    the schema that names it."""
    kind = _KINDS.get(dtype)
    if kind is None:
        raise InvalidArgument(f"data type {dtype.name} is not supported")
    return kind


def supported() -> frozenset[DataType]:
    return frozenset(_KINDS)


def vector_kind_of(dtype: DataType) -> VectorKind:
    """The vector kind of ``dtype`` (InvalidArgument for a type that is not a vector)."""
    kind = kind_of(dtype)
    if not isinstance(kind, VectorKind):
        raise InvalidArgument(f"data type {dtype.name} is not a vector type")
    return kind


__all__ = ["FieldKind", "VectorKind", "kind_of", "supported", "vector_kind_of"]
