"""Milvus 2.6's quantized vector indexes, built from FAISS parts.

| Milvus        | FAISS                                                                   |
|---------------|-------------------------------------------------------------------------|
| HNSW_SQ       | ``IndexHNSW`` over an ``IndexScalarQuantizer`` (SQ4U = QT_4bit_uniform, |
|               | SQ6, SQ8, FP16, BF16)                                                   |
| HNSW_PQ       | ``IndexHNSWPQ`` (m sub-vectors of nbits each)                           |
| HNSW_PRQ      | ``IndexHNSW`` over an ``IndexProductResidualQuantizer`` (m sub-vectors, |
|               | nrq residual codebooks of nbits each)                                   |
| IVF_RABITQ    | ``IndexIVFRaBitQ`` (1-bit codes; ``rbq_query_bits`` quantizes queries)  |
| SCANN         | ``IndexIVFPQFastScan`` with 4-bit codes over 2-d sub-vectors, as        |
|               | knowhere's ScaNN, re-ranked with the raw vectors (``with_raw_data``)   |

``refine`` / ``refine_type`` wrap any of the first four in ``IndexRefine`` with a finer copy
(SQ6, SQ8, FP16, BF16 or FP32 = ``IndexRefineFlat``): the graph or the lists find
``k * refine_k`` candidates by their codes, the copy re-ranks them, and the distances
returned are the copy's. The graph is built over the *codes*' distances, as knowhere does,
so these kinds trade recall for memory: ``test_ann.py`` has their recall floors.

Everything here is FAISS's own serialisation, read back by ``faiss.read_index``; the
wrapper (refine or not) is found again from the loaded index, not from the spec.
"""

from __future__ import annotations

import faiss

from keeldb.index.params import IndexSpec, SearchKnobs

# Milvus's precision names -> FAISS scalar quantizer types
_SQ = {
    "SQ4U": faiss.ScalarQuantizer.QT_4bit_uniform,
    "SQ6": faiss.ScalarQuantizer.QT_6bit,
    "SQ8": faiss.ScalarQuantizer.QT_8bit,
    "FP16": faiss.ScalarQuantizer.QT_fp16,
    "BF16": faiss.ScalarQuantizer.QT_bf16,
}
# ScaNN's 4-bit fast-scan codes: one code per two dimensions (knowhere's choice)
SCANN_SUB_DIM = 2


def make(spec: IndexSpec, nlist: int, metric: int) -> faiss.Index:
    """An empty, untrained index for ``spec`` (``nlist``: the IVF kinds' lists, already
    sized to the segment by ``IndexSpec.nlist_for``)."""
    d, t, b = spec.dim, spec.index_type, spec.build
    if t == "IVF_RABITQ":
        base: faiss.Index = faiss.index_factory(d, f"IVF{nlist},RaBitQ", metric)
    elif t == "SCANN":
        m = d // SCANN_SUB_DIM if d % SCANN_SUB_DIM == 0 else d
        base = faiss.index_factory(d, f"IVF{nlist},PQ{m}x4fs", metric)
        return faiss.IndexRefineFlat(base) if b["with_raw_data"] else base
    else:
        if t == "HNSW_PQ":
            # FAISS's own class: a plain IndexHNSW over an IndexPQ aborts the process (the
            # PQ storage has no distance computer for the graph's parallel inserts).
            base = faiss.IndexHNSWPQ(d, b["m"], b["M"], b["nbits"], metric)
        else:
            if t == "HNSW_SQ":
                storage: faiss.Index = faiss.IndexScalarQuantizer(d, _SQ[b["sq_type"]], metric)
            else:  # HNSW_PRQ
                storage = faiss.IndexProductResidualQuantizer(d, b["m"], b["nrq"], b["nbits"], metric)
                for i in range(b["m"]):
                    # FAISS's default training grows the codebooks' dimension step by step:
                    # 12x the time of plain k-means per codebook (128 s against 10.6 s for
                    # 12,000 x 32-d rows, nbits 8) for recall@10 0.859 against 0.851.
                    rq = faiss.downcast_Quantizer(storage.prq.subquantizer(i))
                    rq.train_type = faiss.ResidualQuantizer.Train_default
            # (FAISS's Python constructors keep the parts they are given alive with the
            # whole: built here, the index is written, and read back as one object.)
            base = faiss.IndexHNSW(storage, b["M"])
        base.hnsw.efConstruction = b["efConstruction"]
    rtype = b.get("refine_type")
    if rtype is None:
        return base
    if rtype == "FP32":
        return faiss.IndexRefineFlat(base)
    return faiss.IndexRefine(base, faiss.IndexScalarQuantizer(d, _SQ[rtype], metric))


def core(index: faiss.Index) -> faiss.Index:
    """The index under a refine wrapper (the graph or the lists), or ``index`` itself."""
    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.base_index)
    return index


def needs_training(index: faiss.Index) -> bool:
    """Whether ``index`` must be trained before rows are added. (An ``IndexHNSW`` built
    around a storage index says it is trained whatever its storage's codebooks are.)"""
    c = core(index)
    if isinstance(c, faiss.IndexHNSW):
        return not faiss.downcast_index(c.storage).is_trained
    return not index.is_trained


def search_params(
    index: faiss.Index, base: faiss.SearchParameters, knobs: SearchKnobs, k: int
) -> tuple[faiss.SearchParameters, ...]:
    """``base`` (the graph's or the lists' parameters) completed for a quantized kind: the
    query bits of RaBitQ, the refine factor of a refine wrapper. Returns the parameters to
    search with first, then every object they point at (SWIG does not keep those alive)."""
    if isinstance(core(index), faiss.IndexIVFRaBitQ):
        rq = faiss.IVFRaBitQSearchParameters()
        rq.nprobe = base.nprobe
        rq.qb = knobs.rbq_query_bits or 0
        rq.sel = base.sel
        base = rq
    if not isinstance(index, faiss.IndexRefine):
        return (base,)
    if knobs.reorder_k is not None:
        factor = knobs.reorder_k / k
    else:
        factor = knobs.refine_k or 1.0
    return (faiss.IndexRefineSearchParameters(k_factor=float(factor), base_index_params=base), base)
