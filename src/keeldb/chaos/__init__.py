"""Chaos layer: the seed scenario as a command (`keeldb chaos`) — workload, faults, history,
and a checker that compares what the database says with what was acknowledged.

Nothing here imports the engine: the chaos command talks to a server through pymilvus
only, so it can judge keeldb and any other Milvus-compatible endpoint the same way.
"""
