"""Engine layer: collections, MVCC snapshots, filters, search and query over the storage layer."""
