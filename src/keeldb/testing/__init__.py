"""What tests, ``keeldb chaos`` and the benchmarks share to run servers: free ports on
loopback, and (in ``keeldb.testing.testbed`` once moved) real etcd and S3 processes.

Nothing here is imported by the engine or the server."""
