"""Which faults a chaos run injects, and in which order.

Random SIGKILLs almost never land inside a narrow window (the microseconds between a log
append and its acknowledgement, between two manifest commits). Named crash points do: the
server is restarted with ``KEELDB_CRASH_AT=<point>:<n>`` and dies exactly there. So against
a server that has them (keeldb, and each node of a keeldb cluster) the default mix is
SIGKILL *and* crash points, and the points are not drawn at random (which repeats some and
misses others in a short run) but cycled: a seeded shuffle of every live point, dealt out
over the run's crash-point faults, each fault arming its share of the cycle one after
another. Every live point is armed in every run that has at least one crash-point fault.

A SIGKILL leaves the kernel's page cache intact, so a missing fsync is invisible to it and
to crash points alike. ``power-cut`` is the fault that sees it: the server runs with
``KEELDB_FAULTS=power-cut`` (keeldb's storage then tracks what each fsync made durable,
``storage/powercut.py``) and dies at an armed point — its own cycle of the same points — or
at a random instant (SIGUSR1) losing everything not yet fsynced; every other cut keeps a
random part of it instead (``power-cut=tear:SEED``: pages that reached the disk anyway).

A fault's kinds are scheduled the same way: every kind of the mix appears once in each
round of ``len(kinds)`` faults, in a seeded order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAULT_KINDS = ("sigkill", "sigstop", "crash-point", "power-cut", "disk-full", "slow-fsync")
# The default mix, less what a target cannot take (Run.fault_kinds): keeldb all three, a
# keeldb cluster sigkill and crash-point (no power cut: ClusterTarget says why), any other
# server sigkill only.
DEFAULT_FAULTS = ("sigkill", "crash-point", "power-cut")
# How a power-cut fault's cuts alternate: all unsynced bytes lost, or a random part kept.
POWER_MODES = ("power-cut", "power-cut=tear:{seed}")
RANDOM_CUT = "random"  # a power-cut fault's last cut: SIGUSR1 at a random instant
# Crash points worth arming in a live server: each sits on a path that makes data visible
# or invisible under this workload (writes, flushes, compaction, index commits, garbage
# collection, replay). The writers drive wal.*; the flusher flush.*, manifest.*, gc.* and
# (once the collection's index exists, after each flush) index.*; the compactor
# compaction.*; a restart after a crash recovery.*. The catalog's points are left out: only
# creating or dropping a collection reaches them, which the workload never does.
LIVE_CRASH_POINTS = (
    "wal.before_append",
    "wal.after_append",
    "wal.before_fsync",
    "wal.after_fsync",
    "flush.after_rotate",
    "flush.after_segment_write",
    "flush.after_segment_fsync",
    "manifest.before_rename",
    "manifest.after_rename",
    "compaction.after_write",
    "compaction.after_commit",
    "index.after_write",
    "index.after_commit",
    "gc.during",
    "recovery.during_replay",
)
# What a cluster node reaches (``--target cluster``): all of the live points. A node runs the
# same engine over the cluster store, so wal.* lie in its log over object storage (the
# append; the group commit's conditional put between before_fsync and after_fsync),
# manifest.* around the etcd transaction that commits a manifest, and flush.*,
# compaction.*, index.*, gc.* (of the node's local cache) and recovery.* (taking a shard
# over, opening a read replica) in the engine itself. Almost all lie on a shard writer's
# path only (a read replica replays, but never appends, flushes or commits), so a cluster
# round makes the node it arms the writer
# (chaos/targets.py, ClusterTarget); a run of ``--rows 20000 --count 6 --seed 1`` reached
# every one. The catalog's points stay out here too: a cluster's catalog is an etcd key
# (no file to crash around), and the workload never changes it.
CLUSTER_CRASH_POINTS = LIVE_CRASH_POINTS
# Points hit many times a second: armed for a later hit too (1st to 3rd), so the crash
# lands after a varying number of writes.
REPEATED = ("wal.",)
# Points armed with a worker hurried (calling every workload.HURRY_SECONDS, not its interval),
# so that commits of more than one step reach them often: with the compactor hurried, most
# manifest commits are a compaction's, and a compaction that commits in two steps dies
# between them on some hits (hence several hits per cycle: MANIFEST_HITS).
HURRY = {"manifest.": "compact"}
MANIFEST_HITS = (1, 2, 3)
# Points between two records of one write, if a write is ever logged as several (Milvus
# logs an upsert as a delete and an insert): each is armed twice per cycle, for an odd
# and for an even hit, so whichever record comes first after the restart, one of the two
# crashes lands between the records. (Before the 1st append nothing of a write is logged
# yet, so wal.before_append is armed for its 2nd and 3rd.)
BETWEEN_RECORDS = {"wal.after_append": (1, 2), "wal.before_append": (2, 3)}
CRASH_WAIT = 30.0  # seconds an armed point has to be reached before the runner gives up
NOT_REACHED = "(not reached in {:g}s; killed)"
LOG_LINES = 15  # lines of a server's log a "did not recover" finding quotes


class NotRecovered(Exception):
    """The target did not come back after a fault (exited while starting, or never served):
    a finding, not a failure of the tool."""


def known_crash_points() -> set[str]:
    """The points this keeldb's server knows (keeldb.storage.crash.CRASH_POINTS): a name it
    does not know is never reached, so it is refused (or, from the defaults, skipped)."""
    from keeldb.storage.crash import CRASH_POINTS

    return set(CRASH_POINTS)


def live_crash_points(
    requested: tuple[str, ...] = (), live: Sequence[str] = LIVE_CRASH_POINTS
) -> tuple[str, ...]:
    """The points a run arms: ``requested`` (each must exist), or every point of ``live``
    (the target's: ``Target.crash_points``) the server knows."""
    known = known_crash_points()
    if requested:
        unknown = [p for p in requested if p not in known]
        if unknown:
            raise ValueError(f"unknown crash points {unknown}; known: {', '.join(sorted(known))}")
        return requested
    return tuple(p for p in live if p in known)


def schedule(kinds: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """``count`` fault kinds: rounds in which every kind appears once, each round shuffled."""
    out: list[str] = []
    while len(out) < count:
        round_ = list(kinds)
        rng.shuffle(round_)
        out.extend(round_)
    return out[:count]


class CrashCycle:
    """Deals every point of a seeded shuffle of ``points`` over ``faults`` crash-point
    faults (a new shuffle once all were dealt), each as ``name:n``."""

    def __init__(self, points: Sequence[str], faults: int, rng: random.Random) -> None:
        self.points = list(points)
        self.rng = rng
        self.per_fault = max(1, math.ceil(len(self._cycle()) / max(1, faults)))
        self._left: list[str] = []

    def _cycle(self) -> list[str]:
        """One cycle: every point as ``name:n`` (points between records twice)."""
        out = []
        for p in self.points:
            if p in BETWEEN_RECORDS:
                out.extend(f"{p}:{n}" for n in BETWEEN_RECORDS[p])
            elif p.startswith("manifest."):
                out.extend(f"{p}:{n}" for n in MANIFEST_HITS)
            else:
                out.append(f"{p}:{self.rng.randint(1, 3) if p.startswith(REPEATED) else 1}")
        return out

    def next_round(self) -> list[str]:
        out: list[str] = []
        while len(out) < self.per_fault:
            if not self._left:
                self._left = self._cycle()
                self.rng.shuffle(self._left)
            out.append(self._left.pop(0))
        return out


def hurried_worker(spec: str) -> str | None:
    """The worker to hurry while ``spec`` is armed (HURRY), if any."""
    return next((w for prefix, w in HURRY.items() if spec.startswith(prefix)), None)


def log_tail(path: Path | None, lines: int = LOG_LINES) -> str:
    """The last lines of a server's log, for a finding (or why there are none)."""
    if path is None or not path.exists():
        return f"(no log at {path})"
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 16384))
        text = f.read().decode(errors="replace")
    # A server that fails the same way at every start logs the same line each time: once.
    out: list[list[Any]] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if out and out[-1][0] == line:
            out[-1][1] += 1
        else:
            out.append([line, 1])
    return " | ".join(line if n == 1 else f"{line} (x{n})" for line, n in out[-lines:])
