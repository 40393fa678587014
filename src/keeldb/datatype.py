"""Milvus's data types, with pymilvus's numeric values.

A ``pymilvus.DataType`` passed to keeldb is understood (both are ``int`` underneath), so a
schema written for one works for the other. Which of them keeldb stores is
``keeldb.fields``' business."""

from __future__ import annotations

from enum import IntEnum


class DataType(IntEnum):
    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    GEOMETRY = 24
    TEXT = 25
    TIMESTAMPTZ = 26
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105
    UNKNOWN = 999
