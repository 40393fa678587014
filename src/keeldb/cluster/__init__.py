"""Cluster mode's coordination on etcd: a stdlib client for etcd's JSON gateway (``etcd``)
and one fenced writer per shard (``shard``). Object storage and node roles build on these."""
