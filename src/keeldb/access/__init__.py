"""Users, roles, privileges and privilege groups, as Milvus defines them.

``state`` holds the rules and the check, ``passwords`` the hashing, ``privileges`` Milvus's
privilege tables (read from its protos), ``calls`` pymilvus's method shapes over a store.
Nothing here knows about gRPC or files: the catalog stores the state (one commit path for
every metadata change), the server authenticates and authorizes calls with it
(``server/access.py``).
"""
