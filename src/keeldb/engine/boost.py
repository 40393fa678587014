"""The boost ranker (Milvus 2.6.2+): a search's own scores, raised or lowered for the hits
that match a filter, or shuffled by a seeded hash.

``ranker=Function(params={"reranker": "boost", "filter": ..., "weight": w,
"random_score": {"seed": s, "field": f}})``, or several such functions in a
``FunctionScore(functions=[...], params={"boost_mode": ..., "function_mode": ...})``.
The arithmetic is Milvus's segment rescorer (``internal/core/src/rescores``), in float32 as
there:

- each function gives the candidates its filter matches (all of them without a filter) a
  value: ``weight``, or with ``random_score`` ``weight * r`` where ``r`` in [0, 1) comes
  from MurmurHash3 of the row's INT64 ``field`` value and the seed;
- a candidate's values over the functions combine by ``function_mode`` (multiply, the
  default, or sum); a candidate no function matched keeps its score unchanged;
- the combined value then multiplies (``boost_mode`` multiply, the default) or is added to
  (sum) the search's score, which stays what the metric reports: a distance (L2,
  HAMMING, JACCARD) is multiplied as is and still ranks ascending, so a weight above 1
  *lowers* an L2 hit, exactly as in Milvus.

What differs from Milvus, and why: Milvus rescores each segment's top ``offset + limit``
before merging segments, so which hits are candidates depends on how rows fall into its
segments; keeldb rescores the collection's top ``offset + limit`` (the same set when the
data is one segment). ``random_score`` without a ``field`` hashes the row's segment offset
in Milvus, which keeldb does not have; keeldb hashes the primary key instead (an INT64
key as is, a VARCHAR key through 8 bytes of BLAKE2b), deterministic for a seed. A missing
``seed`` (left uninitialised by Milvus) is 0.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keeldb.errors import InvalidArgument, KeelError

__all__ = ["MODES", "Boost", "BoostFunction", "boost_from_functions", "hash_to_unit", "is_boost"]

MODES = ("multiply", "sum")
_M64 = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


class BoostError(KeelError):
    """A boost function Milvus's proxy refuses with a plain error (code 65535)."""

    code = 65535


@dataclass(frozen=True)
class BoostFunction:
    weight: float
    filter: str | None = None
    random: bool = False
    seed: int = 0
    field: str | None = None  # random_score's INT64 field; None: the primary key


@dataclass(frozen=True)
class Boost:
    functions: tuple[BoostFunction, ...]
    boost_mode: str = "multiply"
    function_mode: str = "multiply"

    def combine(self, score: float, values: Sequence[float | None]) -> float:
        """A candidate's score after the functions' values (None: that function did not
        match it), in float32 as Milvus computes it."""
        acc: np.float32 | None = None
        for v in values:
            if v is None:
                continue
            f = np.float32(v)
            if acc is None:
                acc = f
            else:
                acc = acc * f if self.function_mode == "multiply" else acc + f
        s = np.float32(score)
        if acc is None:
            return float(s)
        return float(s * acc if self.boost_mode == "multiply" else s + acc)


def is_boost(params: Mapping[str, Any]) -> bool:
    return str(params.get("reranker", "")).lower() == "boost"


# -- MurmurHash3 x64 of one (key, seed) block, and its [0, 1) double (Milvus's Murmur3.c) ---


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur_special(key: int, seed: int) -> int:
    """``MurmurHash3_x64_64_Special``: the 128-bit hash of the 16 bytes (key, seed), h1."""
    key &= _M64
    seed &= _M64
    h1, h2 = key ^ seed, seed
    k1 = _rotl((key * _C1) & _M64, 31) * _C2 & _M64
    h1 ^= k1
    h1 = (_rotl(h1, 27) + h2) & _M64
    h1 = (h1 * 5 + 0x52DCE729) & _M64
    k2 = _rotl((seed * _C2) & _M64, 33) * _C1 & _M64
    h2 ^= k2
    h2 = (_rotl(h2, 31) + h1) & _M64
    h2 = (h2 * 5 + 0x38495AB5) & _M64
    h1 ^= 16
    h2 ^= 16
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix(h1), _fmix(h2)
    return (h1 + h2) & _M64


def hash_to_unit(key: int, seed: int) -> float:
    """Milvus's ``hash_to_double``: the low 52 bits as the mantissa of a double in [1, 2),
    minus 1."""
    bits = (0x3FF << 52) | (murmur_special(key, seed) & 0xFFFFFFFFFFFFF)
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0]) - 1.0


def key_of(value: Any) -> int:
    """The 64-bit integer a row is hashed by: an integer as is, text through BLAKE2b."""
    if value is None:
        return 0
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    digest = hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# -- building from what a client sends --------------------------------------------------------


_INT_PREFIX = re.compile(r"\s*[+-]?\d+")


def _seed(text: str) -> int:
    """C++ ``std::stoll``: the leading integer of the text."""
    m = _INT_PREFIX.match(text)
    if m is None:
        raise InvalidArgument(f"parse boost random seed params failed: stoll: {text}")
    v = int(m.group())
    if not -(1 << 63) <= v < (1 << 63):
        raise InvalidArgument(f"parse boost random seed params failed: stoll: {text}")
    return v


def _random(value: Any) -> tuple[int, str | None]:
    """``random_score``'s seed and field (Milvus's prepareBoostRandomParams): JSON text on
    the wire, a dict from the embedded client; other keys are ignored."""
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_float=lambda s: _Num(s), parse_int=lambda s: _Num(s))
        except ValueError as e:
            raise BoostError(f"random_score must be a JSON object: {e}") from None
    if not isinstance(value, Mapping):
        raise BoostError(f"random_score must be a JSON object, got {value!r}")
    seed, field = 0, None
    for key, v in value.items():
        if key == "field":
            if not isinstance(v, str):
                raise InvalidArgument("random seed field name must be string")
            field = v
        elif key == "seed":
            if isinstance(v, _Num):
                seed = _seed(v.text)
            elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                seed = _seed(str(v))
            else:
                raise InvalidArgument("random seed must be number")
    return seed, field


@dataclass(frozen=True)
class _Num:
    """A JSON number kept as its text (Go's json.Number)."""

    text: str


def _function(params: Mapping[str, Any], inputs: Sequence[str]) -> BoostFunction:
    if "weight" not in params:
        raise BoostError("must set weight params for weight scorer")
    raw = params["weight"]
    try:
        if isinstance(raw, bool):
            raise ValueError
        weight = float(raw)
    except (TypeError, ValueError):
        raise BoostError(
            f"parse function scorer weight params failed with error: "
            f'{{strconv.ParseFloat: parsing "{raw}": invalid syntax}}'
        ) from None
    if not math.isfinite(weight) or abs(weight) > float(np.finfo(np.float32).max):
        raise BoostError(
            f"parse function scorer weight params failed with error: "
            f'{{strconv.ParseFloat: parsing "{raw}": value out of range}}'
        )
    flt = params.get("filter")
    flt = str(flt) if flt is not None and str(flt).strip() else None
    if "random_score" in params:
        seed, field = _random(params["random_score"])
        return BoostFunction(weight, flt, True, seed, field)
    return BoostFunction(weight, flt)


def _mode(params: Mapping[str, Any], key: str) -> str:
    if key not in params:
        return "multiply"
    s = str(params[key]).lower()
    if s not in MODES:
        raise InvalidArgument(f"unknown boost mode: {s}")
    return s


def boost_from_functions(
    functions: Sequence[tuple[Mapping[str, Any], Sequence[str]]], score_params: Mapping[str, Any]
) -> Boost:
    """A boost ranker from a FunctionScore's functions (each: params, input field names),
    all of them boost functions, and its params (``boost_mode``, ``function_mode``; other
    keys are ignored, as Milvus's proxy ignores them)."""
    built = tuple(_function(p, [n for n in inputs if n]) for p, inputs in functions)
    if not built:
        raise BoostError("Currently only supports one rerank, but got 0")
    return Boost(built, _mode(score_params, "boost_mode"), _mode(score_params, "function_mode"))
