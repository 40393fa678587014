"""The interface every field kind implements (see ``keeldb.fields``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

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
    form (``vectors``: for dense types an (n, dim) numpy array) that indexes and exact
    search read."""

    is_vector = True

    def check_field(self, f: FieldSchema) -> None:
        if f.nullable or f.default_value is not None:
            raise InvalidArgument(f"vector field {f.name!r} cannot be nullable or have a default")

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        raise InvalidArgument(f"vector field {f.name!r} cannot be nullable or have a default")

    @abstractmethod
    def vectors(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> Any:
        """The column's checked values in searchable form, or InvalidArgument naming the row."""

    @abstractmethod
    def from_vectors(self, f: FieldSchema, vectors: Any) -> pa.Array: ...

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        return self.from_vectors(f, self.vectors(f, values))
