"""The crash matrix: for every named crash point, kill a child process there and check that
recovery produces exactly the model of acknowledged operations (plus, all or nothing, the one
operation that was in flight).

Points are taken from ``keeldb.storage.crash.CRASH_POINTS``, so a new point is covered the
moment it is declared; the test also fails if a declared point is never reached by the
workload (an untested point is a promise nobody checked).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keeldb.storage.crash import CRASH_POINTS
from tests.crash_workload import check, expected_states, observed_state, run_child

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@pytest.mark.parametrize("nth", [1, 2, 5])
@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_crash_at_point(tmp_path: Path, point: str, nth: int) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    rc = run_child(data, journal, f"{point}:{nth}")
    if nth == 1:
        assert rc == -9, f"crash point {point} was never reached by the workload"
    check(data, journal)
    # Recovery must be repeatable: a second reopen (after the first one's own writes, GC
    # and log truncation) sees the same data.
    check(data, journal)


# A crash inside one background job, counted on its thread: the N-th hit of a point counted
# over every thread lands on whichever commit a background index build, compaction or the
# workload's own flush happens to make N-th, and a loaded machine reorders those (an index
# build that beats a compaction moves the compaction's commits one place on). Counted on the
# compaction thread, hit 2 of manifest.before_rename is always the second manifest commit of
# background compactions: the second compaction's, or -- were a compaction ever split in two
# commits -- the crash between its halves (tests/test_mutants.py plants exactly that).
BACKGROUND = {"compaction-2nd-commit": "manifest.before_rename@keeldb-compact:2"}


@pytest.mark.parametrize("case", sorted(BACKGROUND))
def test_crash_in_background_job(tmp_path: Path, case: str) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert run_child(data, journal, BACKGROUND[case]) == -9, f"{BACKGROUND[case]} was never reached by the workload"
    check(data, journal)
    check(data, journal)


# The same points as power cuts (storage/powercut.py): the process dies there AND loses
# every byte and every directory change not yet fsynced — what SIGKILL cannot show (the page
# cache survives it). ``tear`` keeps a random part of the lost bytes instead (seeded). Two
# cases a point (the first hit, plain; the fifth, torn) keep the default suite short; the
# SIGKILL matrix above covers the second hit.
@pytest.mark.parametrize(("nth", "mode"), [(1, "power-cut"), (5, "power-cut=tear:5")])
@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_power_cut_at_point(tmp_path: Path, point: str, nth: int, mode: str) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    rc = run_child(data, journal, f"{point}:{nth}", {"KEELDB_FAULTS": mode})
    if nth == 1:
        assert rc == -9, f"crash point {point} was never reached by the workload"
    check(data, journal)
    check(data, journal)


def test_workload_without_crash(tmp_path: Path) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert run_child(data, journal, None) == 0
    states, done = expected_states(journal)
    assert done
    assert observed_state(data) == states[0]


def test_crash_during_replay_then_again(tmp_path: Path) -> None:
    """Kill recovery itself, repeatedly: replay is idempotent."""
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert run_child(data, journal, "wal.after_fsync:12") == -9
    for _ in range(3):
        env = dict(os.environ, KEELDB_CRASH_AT="recovery.during_replay:2")
        env["PYTHONPATH"] = str(ROOT / "src")
        code = "import sys, keeldb; keeldb.Client(sys.argv[1])"
        proc = subprocess.run([sys.executable, "-c", code, str(data)], env=env, timeout=60)
        assert proc.returncode in (0, -9)
    check(data, journal)
