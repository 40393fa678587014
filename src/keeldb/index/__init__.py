"""Per-segment indexes: the interface and registry the engine uses (``base``), Milvus's
parameters (``params``) and the FAISS implementation (``faiss_index``).

Sits between storage and engine: it knows nothing of MVCC or manifests; the engine decides
when to build an index, commits it through the manifest, and tells a search which rows it
may return."""
