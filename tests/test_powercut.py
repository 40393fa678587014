"""The simulated power cut (storage/powercut.py): after a cut, the files hold exactly what the
fsyncs made durable — file bytes up to each file's last fsync, directory changes up to each
directory's last fsync — and the process has died of SIGKILL.

Each test runs a child that does file operations through storage/fs.py with
``KEELDB_FAULTS=power-cut`` and then cuts the power; the parent looks at what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import os, sys
from pathlib import Path
from keeldb.storage import fs
from keeldb.storage.crash import power_tracker
d = Path(sys.argv[1])
cut = lambda: power_tracker().cut()
"""


def run(tmp_path: Path, body: str, faults: str = "power-cut", *, wait_signal: bool = False) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = dict(os.environ, KEELDB_FAULTS=faults, PYTHONPATH=str(ROOT / "src"))
    env.pop("KEELDB_CRASH_AT", None)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "d")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait_signal:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, out, err)
    return proc


def test_a_cut_keeps_exactly_what_was_fsynced(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "before").write_bytes(b"on disk when the process started")
    (d / "gone").write_bytes(b"durable, then unlinked without a directory fsync")
    run(tmp_path, """
        fs.write_durable(d / "kept", b"k" * 10)
        fs.fsync_dir(d)                                  # kept's name is durable
        fd = fs.open_for_write(d / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        fs.fsync_dir(d)
        fs.write_all(fd, b"1" * 100)
        fs.sync_fd(fd, data_only=True)
        fs.write_all(fd, b"2" * 50)                      # never synced
        fs.atomic_replace(d / "meta", b"v1")             # durable: rename + directory fsync
        fs.atomic_replace(d / "meta", b"v2", after_rename=lambda: None)  # durable too (its own directory fsync)
        fs.write_durable(d / "nameless", b"n" * 10)      # fsynced, but its name is not (no directory fsync since)
        fs.unlink(d / "gone")
        fs.mkdir(d / "sub")
        fs.write_durable(d / "sub" / "x", b"x")
        fs.fsync_dir(d / "sub")                          # x durable in sub, but sub's own name is not
        fs.atomic_replace(d / "meta", b"v3", before_rename=cut)
    """)
    assert sorted(p.name for p in d.iterdir()) == ["before", "gone", "kept", "log", "meta"]
    assert (d / "kept").read_bytes() == b"k" * 10
    assert (d / "log").read_bytes() == b"1" * 100
    assert (d / "meta").read_bytes() == b"v2"
    assert (d / "gone").read_bytes() == b"durable, then unlinked without a directory fsync"
    assert (d / "before").read_bytes() == b"on disk when the process started"


def test_an_unsynced_rename_over_a_file_brings_the_old_file_back(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "CATALOG").write_bytes(b"old")
    run(tmp_path, """
        def no_dir_fsync():
            fs.write_durable(d / "CATALOG.tmp", b"new")
            fs.replace(d / "CATALOG.tmp", d / "CATALOG")
        no_dir_fsync()
        cut()
    """)
    assert sorted(p.name for p in d.iterdir()) == ["CATALOG"]
    assert (d / "CATALOG").read_bytes() == b"old"


def test_a_drop_not_made_durable_is_undone(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "coll" / "wal").mkdir(parents=True)
    (d / "coll" / "seg").write_bytes(b"segment")
    (d / "coll" / "wal" / "1.log").write_bytes(b"log")
    run(tmp_path, """
        fs.rmtree(d / "coll")
        cut()
    """)
    assert (d / "coll" / "seg").read_bytes() == b"segment"
    assert (d / "coll" / "wal" / "1.log").read_bytes() == b"log"


def test_a_truncation_not_yet_fsynced_is_undone(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "log").write_bytes(b"abcdef")
    run(tmp_path, """
        fd = fs.open_for_write(d / "log", os.O_WRONLY)
        fs.truncate(fd, 2)
        cut()
    """)
    assert (d / "log").read_bytes() == b"abcdef"


def test_a_file_a_library_writes_is_lost_until_fsynced(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    run(tmp_path, """
        with fs.written_by_library(d / "idx"):
            (d / "idx").write_bytes(b"written by FAISS, not fsynced")
        fs.fsync_dir(d)
        cut()
    """)
    assert (d / "idx").read_bytes() == b""  # the name survived (directory fsync), the bytes did not


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_torn_cut_keeps_a_prefix_of_the_unsynced_bytes(tmp_path: Path, seed: int) -> None:
    d = tmp_path / "d"
    d.mkdir()
    written = bytes(range(256)) * 64  # 16 KiB: four pages
    run(tmp_path, f"""
        fd = fs.open_for_write(d / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        fs.fsync_dir(d)
        fs.write_all(fd, b"D" * 1000)
        fs.sync_fd(fd)
        fs.write_all(fd, {written!r})
        cut()
    """, faults=f"power-cut=tear:{seed}")
    got = (d / "log").read_bytes()
    assert got[:1000] == b"D" * 1000 and 1000 <= len(got) <= 1000 + len(written)
    tail = got[1000:]
    differs = [i for i in range(len(tail)) if tail[i] != written[i]]
    if differs:  # one page of the kept part may read back as zeros, nothing else may change
        assert all(tail[i] == 0 for i in differs)
        assert (1000 + differs[-1]) // 4096 == (1000 + differs[0]) // 4096


def test_sigusr1_cuts_the_power(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    proc = run(tmp_path, """
        fd = fs.open_for_write(d / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        fs.fsync_dir(d)
        fs.write_all(fd, b"durable")
        fs.sync_fd(fd)
        fs.write_all(fd, b" lost")
        print("ready", flush=True)
        import time
        while True:
            time.sleep(0.05)
    """, wait_signal=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGUSR1)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (d / "log").read_bytes() == b"durable"


def test_the_cut_freezes_every_thread_first(tmp_path: Path) -> None:
    """Another thread appending to the log while the cut rolls files back would leave bytes
    no power loss can leave: no append lands after the cut began."""
    d = tmp_path / "d"
    d.mkdir()
    run(tmp_path, """
        import threading, time
        fd = fs.open_for_write(d / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        fs.fsync_dir(d)
        fs.write_all(fd, b"S" * 64)
        fs.sync_fd(fd)

        def appender():
            while True:
                fs.write_all(fd, b"x" * 64)

        threading.Thread(target=appender, daemon=True).start()
        time.sleep(0.2)
        cut()
    """)
    time.sleep(0.2)  # nothing is still writing
    assert (d / "log").read_bytes() == b"S" * 64


def test_off_by_default_the_system_calls_are_plain(tmp_path: Path) -> None:
    code = "from keeldb.storage import fs, crash; print(fs._power is None, crash.power_tracker() is None)"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("KEELDB_FAULTS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "True"], out.stderr
