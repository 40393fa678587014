"""Rankers: how the hits of several searches (or one) become one ranked list, and grouping.

Pure functions over (primary key, score) lists, no segments and no snapshots: the caller
(``engine/hybrid.py``) runs the searches on one snapshot and hands each query's hits here.
The arithmetic follows Milvus 2.6 (``internal/util/function/rerank``), so a score keeldb
returns is the score Milvus would return for the same hits:

- **RRF** (``RRFRanker(k)``, ``Function(params={"reranker": "rrf", "k": k})``): a hit's score
  is the sum over the searches that returned it of ``1 / (k + rank)``, rank counted from 1;
  ``k`` in (0, 16384).
- **Weighted** (``WeightedRanker(*w, norm_score=...)``, ``"reranker": "weighted"``): the sum
  of ``w_i * norm_i(score_i)``, one weight in [0, 1] per search. With ``norm_score`` each
  search's score is first mapped into [0, 1] by its metric (Milvus's ``getNormalizeFunc``):
  COSINE ``(1 + s) / 2``, IP ``0.5 + atan(s) / pi``, BM25 ``2 atan(s) / pi``, distances (L2,
  HAMMING, JACCARD) ``1 - 2 atan(d) / pi``. Without it the raw scores are summed, except that
  when similarities and distances are mixed the distances are turned around with
  ``1 - 2 atan(d) / pi`` so that larger is better for all; if every search is a distance the
  sum is a distance and ranks ascending.
- **Decay** (``"reranker": "decay"``, one numeric input field): each hit's best score over
  the searches (distances turned into similarities as above) times a factor in [0, 1] from
  how far the field's value is from ``origin``: ``d = max(0, |v - origin| - offset)``;
  gauss ``exp(ln(decay) * d^2 / scale^2)``, exp ``exp(ln(decay) * d / scale)``, linear
  ``max(0, 1 - (1 - decay) * d / scale)`` -- so the factor is 1 inside the offset and
  ``decay`` at ``scale`` beyond it (Milvus's decay-ranker documentation).

Ties rank the smaller primary key first (Milvus sorts by score, then id). Model rerankers
(they call a remote inference service) are refused, never skipped. The boost ranker
(``"reranker": "boost"``) rescores one search's own hits and is built here too
(``ranker_from_functions``), but its arithmetic lives in ``engine/boost.py``; like Milvus,
it cannot be a hybrid search's ranker.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keeldb.engine.boost import Boost, boost_from_functions, is_boost
from keeldb.errors import InvalidArgument, KeelError

__all__ = [
    "RRF",
    "Decay",
    "Ranker",
    "RankerError",
    "Weighted",
    "fuse",
    "group_fused",
    "normalizer",
    "ranker_from_function",
    "ranker_from_functions",
    "ranker_from_legacy",
    "round_score",
]

RRF_K_MAX = 16384
DEFAULT_RRF_K = 60.0
# Metrics where a larger score is more similar (Milvus's classifyMetricsOrder).
_SIMILARITIES = frozenset({"IP", "COSINE", "BM25"})
DECAY_FUNCTIONS = ("gauss", "exp", "linear")
GROUP_SCORERS = ("max", "sum", "avg")


class RankerError(KeelError):
    """A ranker Milvus would not build (unknown name, bad parameter): Milvus answers these
    with its generic code 65535 (plain errors from its rerank package)."""

    code = 65535


@dataclass(frozen=True)
class RRF:
    k: float = DEFAULT_RRF_K


@dataclass(frozen=True)
class Weighted:
    weights: tuple[float, ...]
    norm_score: bool = False


@dataclass(frozen=True)
class Decay:
    field: str
    function: str
    origin: float
    scale: float
    offset: float = 0.0
    decay: float = 0.5

    def factor(self, value: float) -> float:
        """The decay factor of a field value, in [0, 1]."""
        d = max(0.0, abs(float(value) - self.origin) - self.offset)
        if self.function == "gauss":
            return math.exp(math.log(self.decay) * d * d / (self.scale * self.scale))
        if self.function == "exp":
            return math.exp(math.log(self.decay) * d / self.scale)
        return max(0.0, 1.0 - (1.0 - self.decay) * d / self.scale)


Ranker = RRF | Weighted | Decay


# -- building a ranker from what a client sends ---------------------------------------------


def _number(name: str, value: Any) -> float:
    """A parameter as a float: numbers, or their text (the wire sends ``str(value)``)."""
    if isinstance(value, bool):
        raise RankerError(f"Param {name}:{value} is not a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RankerError(f"Param {name}:{value} is not a number") from None
    if not math.isfinite(out):
        raise RankerError(f"Param {name}:{value} is not a finite number")
    return out


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise RankerError(f"{name} params must be true/false, but got {value}")


def _weights(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RankerError(
                f"Parse weights param failed, weight should be []float, but got: {value}"
            ) from None
    if not isinstance(value, list | tuple) or not value:
        raise RankerError(f"Parse weights param failed, weight should be []float, but got: {value}")
    out = tuple(_number("weights", w) for w in value)
    if any(w < 0 or w > 1 for w in out):
        raise RankerError("rank param weight should be in range [0, 1]")
    return out


def _rrf(params: Mapping[str, Any]) -> RRF:
    k = _number("k", params["k"]) if "k" in params else DEFAULT_RRF_K
    if not 0 < k < RRF_K_MAX:
        raise RankerError(f"The rank params k should be in range (0, {RRF_K_MAX})")
    return RRF(k)


def _weighted(params: Mapping[str, Any]) -> Weighted:
    if "weights" not in params:
        raise RankerError("weights not found")
    norm = _boolean("norm_score", params["norm_score"]) if "norm_score" in params else False
    return Weighted(_weights(params["weights"]), norm)


def _decay(params: Mapping[str, Any], inputs: Sequence[str]) -> Decay:
    if len(inputs) != 1:
        raise RankerError(
            f"Decay function only supports single input, but gets [[{' '.join(inputs)}]] input"
        )
    for key in ("origin", "scale"):
        if key not in params:
            raise RankerError(f"Decay function lost param: {key}")
    function = str(params.get("function", ""))
    if function not in DECAY_FUNCTIONS:
        # Milvus's words, misspelling and all (clients match on them), then which was given.
        raise RankerError(f"Invaild decay function: decay, only support [gauss,linear,exp]: got {function!r}")
    d = Decay(
        field=inputs[0],
        function=function,
        origin=_number("origin", params["origin"]),
        scale=_number("scale", params["scale"]),
        offset=_number("offset", params.get("offset", 0)),
        decay=_number("decay", params.get("decay", 0.5)),
    )
    if d.scale <= 0:
        raise RankerError(f"Decay function param: scale must > 0, but got {d.scale}")
    if d.offset < 0:
        raise RankerError(f"Decay function param: offset must >= 0, but got {d.offset}")
    if not 0 < d.decay < 1:
        raise RankerError(f"Decay function param: decay must 0 < decay < 1, but got {d.decay}")
    return d


def ranker_from_function(params: Mapping[str, Any], input_fields: Sequence[str] = ()) -> Ranker:
    """A ranker from a ``Function(function_type=RERANK, params=...)``'s params (values may be
    text, as on the wire) and input field names."""
    name = str(params.get("reranker", "")).lower()
    inputs = [n for n in input_fields if n]
    if name in ("rrf", "weighted") and inputs:
        raise RankerError(
            f"The {name} function does not support input parameters, but got {inputs}"
        )
    if name == "rrf":
        return _rrf(params)
    if name == "weighted":
        return _weighted(params)
    if name == "decay":
        return _decay(params, inputs)
    if name == "model":
        raise RankerError(
            "model rerankers are not supported by keeldb: they call a remote inference service "
            "(use rrf, weighted or decay)"
        )
    if name == "boost":
        raise RankerError(
            "Unsupported rerank function: [boost] , list of supported [decay,rrf,weighted] "
            "(a boost ranker rescores a search; it cannot fuse a hybrid search's requests)"
        )
    raise RankerError(
        f"Unsupported rerank function: [{name}] , list of supported [decay,rrf,weighted]"
    )


def ranker_from_functions(
    functions: Sequence[tuple[Mapping[str, Any], Sequence[str]]],
    score_params: Mapping[str, Any],
    *,
    hybrid: bool,
) -> Ranker | Boost:
    """The ranker of a ``FunctionScore``: its RERANK functions (params, input field names)
    and its params. Boost functions (any number, combined by ``boost_mode`` /
    ``function_mode``) make a ``Boost`` for a search; otherwise exactly one function and no
    params."""
    kinds = [is_boost(p) for p, _ in functions]
    if any(kinds):
        if hybrid:
            raise RankerError(
                "Unsupported rerank function: [boost] , list of supported [decay,rrf,weighted] "
                "(a boost ranker rescores a search; it cannot fuse a hybrid search's requests)"
            )
        if not all(kinds):
            raise RankerError(
                "a FunctionScore mixing boost functions with other rerankers is not supported "
                "by keeldb"
            )
        return boost_from_functions(functions, score_params)
    if score_params:
        raise RankerError(
            f"function score params are not supported by keeldb: {dict(score_params)}"
        )
    if len(functions) != 1:
        raise RankerError(f"Currently only supports one rerank, but got {len(functions)}")
    params, inputs = functions[0]
    return ranker_from_function(params, inputs)


def ranker_from_legacy(strategy: Any, params: Any) -> Ranker:
    """A ranker from ``RRFRanker`` / ``WeightedRanker`` (``{"strategy", "params"}``, the
    ``rank_params`` of a HybridSearchRequest)."""
    if isinstance(params, str):
        try:
            params = json.loads(params) if params.strip() else {}
        except ValueError:
            raise RankerError(f"rank params must be a JSON object, got {params!r}") from None
    if not isinstance(params, Mapping):
        raise RankerError(f"rank params must be a JSON object, got {params!r}")
    name = str(strategy).lower()
    if name == "rrf":
        return _rrf(params)
    if name == "weighted":
        return _weighted({"norm_score": False, **params})
    raise RankerError(f"unsupported rank type {strategy}")


# -- scores ---------------------------------------------------------------------------------


def larger_is_better(metric: str) -> bool:
    return metric.upper() in _SIMILARITIES


def _to_similarity(d: float) -> float:
    return 1.0 - 2.0 * math.atan(d) / math.pi


def normalizer(metric: str, norm_score: bool, to_greater: bool) -> Callable[[float], float]:
    """Milvus's ``getNormalizeFunc``: a search's score as the weighted ranker adds it."""
    m = metric.upper()
    if not norm_score:
        if not to_greater or m in _SIMILARITIES:
            return float
        return _to_similarity
    if m == "COSINE":
        return lambda s: (1.0 + s) * 0.5
    if m == "IP":
        return lambda s: 0.5 + math.atan(s) / math.pi
    if m == "BM25":
        return lambda s: 2.0 * math.atan(s) / math.pi
    return _to_similarity


def round_score(score: float, decimals: int) -> float:
    """Milvus's ``round_decimal``: floor(s * 10^d + 0.5) / 10^d; -1 leaves it."""
    if decimals == -1:
        return score
    m = 10.0**decimals
    return math.floor(score * m + 0.5) / m


@dataclass(frozen=True)
class RouteHits:
    """One search's hits for one query, best first: primary keys and the scores the search
    reported (a distance or a similarity, by ``metric``)."""

    keys: Sequence[Hashable]
    scores: Sequence[float]
    metric: str


def fuse(
    ranker: Ranker, routes: Sequence[RouteHits], values: Mapping[Hashable, float] | None = None
) -> tuple[dict[Hashable, float], bool]:
    """Every key's fused score, and whether larger scores rank first. ``values``: the decay
    field's value of each key (decay only)."""
    if isinstance(ranker, RRF):
        out: dict[Hashable, float] = {}
        for r in routes:
            for rank, key in enumerate(r.keys, start=1):
                out[key] = out.get(key, 0.0) + 1.0 / (ranker.k + rank)
        return out, True
    if isinstance(ranker, Weighted):
        if len(ranker.weights) != len(routes):
            raise InvalidArgument(
                f"the length of weights param mismatch with ann search requests: "
                f"{len(ranker.weights)} weights for {len(routes)} requests"
            )
        kinds = {larger_is_better(r.metric) for r in routes}
        mixed = len(kinds) == 2
        out = {}
        for w, r in zip(ranker.weights, routes, strict=True):
            norm = normalizer(r.metric, ranker.norm_score, mixed)
            for key, s in zip(r.keys, r.scores, strict=True):
                out[key] = out.get(key, 0.0) + w * norm(float(s))
        return out, ranker.norm_score or mixed or kinds == {True}
    # Decay: the best similarity over the searches, times the field's factor.
    best: dict[Hashable, float] = {}
    for r in routes:
        to_sim = float if larger_is_better(r.metric) else _to_similarity
        for key, s in zip(r.keys, r.scores, strict=True):
            v = to_sim(float(s))
            if key not in best or v > best[key]:
                best[key] = v
    assert values is not None
    return {k: s * ranker.factor(values[k]) for k, s in best.items()}, True


def order(scores: Mapping[Hashable, float], descending: bool) -> list[Hashable]:
    """Keys best first; ties: the smaller primary key first."""
    sign = -1.0 if descending else 1.0
    return sorted(scores, key=lambda k: (sign * scores[k], k))


def group_fused(
    scores: Mapping[Hashable, float],
    group_of: Mapping[Hashable, Hashable],
    *,
    limit: int,
    offset: int,
    group_size: int,
    strict: bool,
    scorer: str = "max",
) -> list[Hashable]:
    """Milvus's grouping after a ranker (``newGroupingIDScores``): keys by fused score,
    each group keeps its best ``group_size``; groups rank by their ``scorer`` (max, sum,
    avg) score, ties by the larger group, then by the smaller first key; the groups from
    ``offset`` to ``offset + limit`` are returned, group by group, and with ``strict`` a
    group with fewer than ``group_size`` keys is left out."""
    if scorer not in GROUP_SCORERS:
        raise InvalidArgument(f"input group scorer type: {scorer} is not supported!")
    buckets: dict[Hashable, list[Hashable]] = {}
    for key in order(scores, True):
        members = buckets.setdefault(group_of[key], [])
        if len(members) < group_size:
            members.append(key)

    def group_score(members: list[Hashable]) -> float:
        vals = [scores[k] for k in members]
        if scorer == "max":
            return max(vals)
        total = sum(vals)
        return total if scorer == "sum" else total / len(vals)

    ranked = sorted(buckets.values(), key=lambda m: (-group_score(m), -len(m), m[0]))
    out: list[Hashable] = []
    for members in ranked[offset : offset + limit]:
        if strict and len(members) < group_size:
            continue
        out.extend(members)
    return out
