"""Mutation testing in the default suite (the whole set: ``python -m tests.mutants``,
docs/chaos.md): every mutant still applies to the code as it is, and two of them are shown
caught, each by the one crash-matrix case that sees it, in a temporary mutated copy.

- ``no-log-fsync`` (group commit acknowledges without fdatasync) is invisible to a SIGKILL —
  the page cache keeps the unsynced log — and caught by the same crash point as a power cut;
- ``compaction-two-commits`` (output added, then inputs dropped, in two manifest commits) is
  caught by a SIGKILL between the commits: recovery refuses the version it finds twice. The
  case counts manifest commits on the compaction thread only, so the crash lands between the
  halves of the first background compaction in every run. (It used to be the 5th manifest
  commit over all threads, which is that point only while the background index build of the
  workload's second segment loses its race with the compaction and with the workload's next
  reopen: on a loaded machine it sometimes won, committed 4th, and the crash came before the
  compaction's first half -- nothing of the mutant on disk, nothing caught.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutants.apply import MutantDrift, apply, env, mutated_copy, mutated_sources
from tests.mutants.catalog import MUTANTS, Edit, Mutant, by_name

MATRIX = "tests/test_crash_matrix.py"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_mutant_still_applies(mutant: Mutant) -> None:
    texts = mutated_sources(mutant)
    assert texts and all(texts.values())


def test_a_mutant_whose_code_moved_fails_loudly(tmp_path: Path) -> None:
    moved = Mutant("moved", "code that is not there", (Edit("src/keeldb/storage/fs.py", "no such line\n", ""),))
    with pytest.raises(MutantDrift, match="occurs 0 times"):
        mutated_sources(moved)
    with pytest.raises(ValueError, match="never to the checkout"):
        apply(by_name("mvcc-off-by-one")[0], Path(__file__).resolve().parents[1])


def failing(root: Path, *node_ids: str) -> set[str]:
    """Which of ``node_ids`` fail when run against the copy at ``root``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *node_ids],
        cwd=root, env=env(root), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    return set(re.findall(r"^FAILED (\S+)", proc.stdout, re.M))


def test_a_dropped_log_fsync_is_caught_by_a_power_cut_not_by_sigkill(tmp_path: Path) -> None:
    root = mutated_copy(by_name("no-log-fsync")[0], tmp_path / "tree")
    kill = f"{MATRIX}::test_crash_at_point[flush.after_rotate-1]"
    power = f"{MATRIX}::test_power_cut_at_point[flush.after_rotate-1-power-cut]"
    assert failing(root, kill, power) == {power}


def test_a_compaction_in_two_commits_is_caught_by_a_crash_between_them(tmp_path: Path) -> None:
    root = mutated_copy(by_name("compaction-two-commits")[0], tmp_path / "tree")
    case = f"{MATRIX}::test_crash_in_background_job[compaction-2nd-commit]"
    assert failing(root, case) == {case}
