"""Cluster errors the server layer needs without importing the cluster's machinery.

``server/routing.py`` answers ``NotOwner`` as UNAVAILABLE; it imports this module, not
``cluster/node.py``, so that ``keeldb.server`` imports without the cluster extra (boto3).
"""

from __future__ import annotations

from keeldb.errors import KeelError


class NotOwner(KeelError):
    """This node does not write the collection (any more). Code 65535: the caller cannot
    know whether a write it sent reached the log before ownership moved."""
