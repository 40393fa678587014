"""Crash-testing user, role and grant changes, and database and alias changes: a child process makes a sequence of them
through the embedded client and is killed at each catalog commit step
(``catalog.before_rename``: the new catalog is written and fsynced under a temporary name;
``catalog.after_rename``: it has replaced the old one, the caller not yet answered). After
the crash the directory holds exactly the changes acknowledged before it, plus the one in
flight when the kill came after the rename -- never a mix (docs/crash-safety.md, "A catalog
change"). Passwords are part of it: a password change is in effect exactly when its commit is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import keeldb

OPS = [
    ("create_user", ("alice", "secret123")),
    ("create_role", ("reader",)),
    ("grant_privilege_v2", ("reader", "CollectionReadOnly", "docs", "default")),
    ("update_password", ("alice", "secret123", "changed99")),
    ("create_database", ("db2",)),
    ("create_alias", ("c1", "live")),
    ("alter_alias", ("c2", "live")),
]

CHILD = """
import sys, keeldb
ops = {ops!r}
c = keeldb.Client(sys.argv[1])
for i, (name, args) in enumerate(ops):
    getattr(c, name)(*args)
    print("ack", i + 1, flush=True)
"""


def view(c: keeldb.Client) -> tuple[Any, ...]:
    """What a reader can observe of the access state (the password by which one logs in)."""
    s = c.access_state()
    login = [p for p in ("secret123", "changed99") if "alice" in s.users and s.authenticate("alice", p)]
    return (
        sorted((n, u.roles) for n, u in s.users.items()),
        s.role_names(),
        sorted(g.key() for g in s.grants),
        login,
        c.list_databases(),
        c.describe_alias("live")["collection_name"] if c.list_aliases()["aliases"] else None,
    )


def setup(d: Path) -> None:
    """Collections to alias, made here before the child (and its armed crash point) runs."""
    c = keeldb.Client(str(d))
    for name in ("c1", "c2"):
        c.create_collection(name, dimension=2)
    c.close()


def expected_views(tmp: Path) -> list[tuple[Any, ...]]:
    setup(tmp / "model")
    c = keeldb.Client(str(tmp / "model"))
    views = [view(c)]
    for name, args in OPS:
        getattr(c, name)(*args)
        views.append(view(c))
    c.close()
    return views


@pytest.mark.parametrize("point", ["catalog.before_rename", "catalog.after_rename"])
def test_crash_at_each_access_commit(tmp_path: Path, point: str) -> None:
    views = expected_views(tmp_path)
    for n in range(1, len(OPS) + 1):
        d = tmp_path / f"{point}-{n}"
        setup(d)  # collections to alias, made before the crash point is armed
        env = dict(os.environ, KEELDB_CRASH_AT=f"{point}:{n}")
        r = subprocess.run([sys.executable, "-c", CHILD.format(ops=OPS), str(d)], env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
        assert r.returncode == -9, (r.returncode, r.stderr[-2000:])
        acked = sum(1 for line in r.stdout.splitlines() if line.startswith("ack"))
        assert acked == n - 1, r.stdout
        c = keeldb.Client(str(d))
        got = view(c)
        c.close()
        want = views[acked + 1] if point == "catalog.after_rename" else views[acked]
        assert got == want, f"crash at {point}:{n}"
