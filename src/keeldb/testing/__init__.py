"""Processes that tests, ``keeldb chaos`` and the benchmarks start, in one place:

- ``process``: one supervised child process — start, wait until ready, signal, kill,
  restart on the same ports and data, stop with a signal then SIGKILL, its log;
- ``server``: ``keeldb serve`` and ``milvus-lite server`` built on it;
- ``testbed``: real etcd and SeaweedFS (S3) on 127.0.0.1 built on it;
- ``cluster``: etcd + SeaweedFS + N keeldb nodes, with the nodes' metrics;
- ``ports``: free ports on loopback.

Nothing here is imported by the engine, the server or cluster mode, and importing it
starts nothing and registers nothing (``process`` registers its atexit hook at the first
start).
"""
