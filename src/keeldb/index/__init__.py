"""Per-segment ANN indexes: Milvus's parameters (``params``) and FAISS (``faiss_index``).

Sits between storage and engine: it knows nothing of MVCC or manifests; the engine decides
when to build an index, commits it through the manifest, and tells a search which rows it
may return."""
