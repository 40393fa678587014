"""The interface every field kind implements (see ``keeldb.fields``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np

    from keeldb.schema import FieldSchema


class FieldKind(ABC):
    """One family of data types: its schema rules, its Arrow storage, its values.

    ``column`` is the write path's check: it sees a whole column at once (nulls already
    resolved to ``None`` where the field allows them) and must either return the Arrow
    array or raise :class:`InvalidArgument` naming the row, before anything is logged —
    that is what keeps a batch all-or-nothing."""

    dtypes: ClassVar[tuple[DataType, ...]]
    is_vector: ClassVar[bool] = False

    def check_field(self, f: FieldSchema) -> None:  # noqa: B027 - most kinds have no rules
        """Schema-time rules for this kind's parameters (dim, max_length, ...); a kind with
        none accepts the field as it is."""

    @abstractmethod
    def arrow_type(self, f: FieldSchema) -> pa.DataType: ...

    @abstractmethod
    def check_value(self, f: FieldSchema, value: Any) -> Any:
        """One non-null value (a default, say) in canonical form, or InvalidArgument."""

    @abstractmethod
    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        """A checked column; ``None`` entries are nulls the caller has already allowed."""

    def output(self, f: FieldSchema, values: list[Any]) -> list[Any]:
        """Stored values (as Arrow's ``to_pylist`` gives them) as a reader receives them:
        the same for most kinds; ISO text for TIMESTAMPTZ, WKT for GEOMETRY."""
        return values

    def type_error(self, f: FieldSchema, value: Any, row: int) -> InvalidArgument:
        return InvalidArgument(
            f"row {row}: field {f.name!r} expects {f.dtype.name}, got {type(value).__name__} {value!r:.60}"
        )


class VectorKind(FieldKind):
    """A vector type: never null, no default, and besides its Arrow column a searchable
    form (``vectors``: for dense types an (n, width) numpy array of the stored element type,
    for sparse vectors a :class:`~keeldb.fields.sparse_vector.SparseRows`) that indexes and
    exact search read.

    Besides storage, a kind carries Milvus's rules for searching it — which metrics and
    index types the data type takes, and the metric used when none is named — so that
    ``create_index`` and ``search`` ask the kind instead of branching on the type."""

    is_vector = True
    milvus_name: ClassVar[str]  # Milvus's name of the type in its messages ("FloatVector")
    metrics: ClassVar[tuple[str, ...]]
    default_metric: ClassVar[str]
    index_types: ClassVar[tuple[str, ...]]  # what keeldb builds for the type (AUTOINDEX too)

    @abstractmethod
    def from_arrow(self, f: FieldSchema, col: pa.ChunkedArray | pa.Array) -> Any:
        """The searchable form of a stored column, zero-copy where the column allows it (a
        memory-mapped segment file stays in the page cache)."""

    @abstractmethod
    def new_buffer(self, f: FieldSchema, capacity: int) -> VectorBuffer:
        """Growable in-memory storage for a growing segment's vectors of this field."""

    @abstractmethod
    def values_at(self, f: FieldSchema, vectors: Any, rows: np.ndarray) -> list[Any]:
        """The values at ``rows`` as pymilvus returns them in search results (lists of floats,
        ``bytes`` for the byte-stored types, ``{index: value}`` dicts for sparse vectors)."""

    @abstractmethod
    def queries(self, f: FieldSchema, data: Any) -> Any:
        """Search input (one vector or a list of them) in the form the field's executor
        searches with, or InvalidArgument."""

    def check_field(self, f: FieldSchema) -> None:
        # Milvus's words: "vector type not support null" / "type not support default_value".
        if f.nullable:
            raise InvalidArgument(f"vector type not support null: vector field {f.name!r} cannot be nullable")
        if f.default_value is not None:
            raise InvalidArgument(f"type not support default_value: vector field {f.name!r} cannot have a default")

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        raise InvalidArgument(f"vector field {f.name!r} cannot be nullable or have a default")

    @abstractmethod
    def vectors(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> Any:
        """The column's checked values in searchable form, or InvalidArgument naming the row."""

    @abstractmethod
    def from_vectors(self, f: FieldSchema, vectors: Any) -> pa.Array: ...

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        return self.from_vectors(f, self.vectors(f, values))


class VectorBuffer(Protocol):
    """A growing segment's vectors of one field. Appends happen under the collection's
    write lock; ``view`` may run concurrently and must return a form of the first ``n``
    rows that no later append changes (growth swaps in new storage; readers keep the old)."""

    def append(self, start: int, vectors: Any) -> None: ...

    def view(self, n: int) -> Any: ...

    def to_arrow(self, n: int) -> pa.Array: ...
