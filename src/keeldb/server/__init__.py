"""Server layer: Milvus's gRPC ``MilvusService`` in front of the engine (``keeldb serve``)."""
