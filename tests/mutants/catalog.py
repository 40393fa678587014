"""The mutants: bugs of the classes Milvus has shipped, each a small exact-text edit of keeldb.

A mutant is applied to a temporary copy of the source tree only (``apply.py``); each edit's
old text must occur exactly once in its file, or applying fails loudly — a mutant whose code
moved must be updated here, never skipped.

``blind`` says why ``keeldb chaos`` with its default fault mix provably cannot see a mutant;
``equivalent`` says why nothing can (the edit does not change what reaches the disk in any
state a crash or power cut can leave). Every other mutant must be caught by both the chaos
checker and the project's own crash and model tests (``python -m tests.mutants``).
"""

from __future__ import annotations

from dataclasses import dataclass

COLLECTION = "src/keeldb/engine/collection.py"
RECOVERY = "src/keeldb/engine/recovery.py"
MEMSTATE = "src/keeldb/engine/memstate.py"

# The project's crash and model tests, fast ones first (each run stops at its first failure).
OWN_TESTS = (
    "tests/test_recovery_verifies.py",
    "tests/test_recovery.py",
    "tests/test_seed.py",
    "tests/test_model.py",
    "tests/test_concurrency.py",
    "tests/test_crash_matrix.py",
)
TTL_TESTS = ("tests/test_ttl.py", *OWN_TESTS)
CLUSTER_TESTS = ("tests/test_cluster_node.py", "tests/test_cluster_crash.py", "tests/test_cluster_store.py")


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the repository root
    old: str  # must occur exactly once
    new: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...] = OWN_TESTS
    chaos: tuple[str, ...] = ()  # extra `keeldb chaos` flags (the fault mix stays the default)
    blind: str = ""  # why the default chaos run cannot see it
    equivalent: str = ""  # why no test can: the same states reach the disk


# -- the write path ---------------------------------------------------------------------------

_WRITE = """        end = self._append(rtype, ts, payload)
        self._guarded_apply(lambda: mem.apply_rows(batch, ts, upsert))
        self._pending.append(_Pending(self._log, end, ts, len(mem.live)))
        return end, ts, self._log
"""


def _late_append(delay: float) -> str:
    """The write returns (acknowledged) before its record is appended ``delay`` s later:
    ``_log_rows`` hands its caller position 0, which is durable already."""
    return f"""        self._guarded_apply(lambda: mem.apply_rows(batch, ts, upsert))
        live_now = len(mem.live)

        def late() -> None:
            try:
                with self._write_lock:
                    end = self._append(rtype, ts, payload)
                    self._pending.append(_Pending(self._log, end, ts, live_now))
                    logw = self._log
                self._make_durable(logw, end)
            except Exception:  # noqa: BLE001
                pass

        t = threading.Timer({delay}, late)
        t.daemon = True
        t.start()
        return 0, ts, self._log
"""


_FLUSH_EDIT = """                    add_segments=(seg_entry,) if seg_entry else (),
                    add_deletes=(del_entry,) if del_entry else (),
                    log_checkpoint=self._log.number,
"""
_NO_CHECKPOINT = Edit(COLLECTION, _FLUSH_EDIT, _FLUSH_EDIT.replace("log_checkpoint=self._log.number", "log_checkpoint=None"))
_GUARDS_OFF = (
    Edit(MEMSTATE, "        if rtype == RecordType.INSERT:\n", "        if False:\n"),
    Edit(RECOVERY, "        if rec.ts <= flushed_max:\n", "        if False:\n"),
    Edit(RECOVERY, "    if twice.size:\n", "    if False:\n"),
)

_COMMIT = """                self.versions.log_and_apply(edit, "compaction")
"""
_TWO_COMMITS = """                self.versions.log_and_apply(
                    ManifestEdit(add_segments=edit.add_segments, add_deletes=edit.add_deletes), "compaction"
                )
                self.versions.log_and_apply(
                    ManifestEdit(drop_segments=edit.drop_segments, drop_deletes=edit.drop_deletes), "compaction"
                )
"""

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "flush-no-checkpoint-unguarded",
        "flush adds the segment but does not advance the log checkpoint, recovery's overlap checks off (the seed's bug)",
        (_NO_CHECKPOINT, *_GUARDS_OFF),
    ),
    Mutant(
        "flush-no-checkpoint",
        "flush adds the segment but does not advance the log checkpoint (recovery's checks on: it refuses to open)",
        (_NO_CHECKPOINT,),
    ),
    Mutant(
        "flush-no-segment",
        "flush advances the checkpoint but never adds the segment",
        (Edit(COLLECTION, _FLUSH_EDIT, _FLUSH_EDIT.replace("add_segments=(seg_entry,) if seg_entry else ()", "add_segments=()")),),
    ),
    Mutant(
        "recovery-applies-nothing",
        "recovery reads the log tail but applies nothing",
        (Edit(RECOVERY, "        mem.apply_record(rec.rtype, rec.ts, rec.payload)\n", ""),),
    ),
    Mutant(
        "ack-20ms-before-append",
        "acknowledge 20 ms before the log append",
        (Edit(COLLECTION, _WRITE, _late_append(0.02)),),
    ),
    Mutant(
        "upsert-two-records",
        "upsert logged as two records (delete, then insert)",
        (
            Edit(
                COLLECTION,
                "        rtype = RecordType.UPSERT if upsert else RecordType.INSERT\n"
                "        end = self._append(rtype, ts, payload)\n",
                "        rtype = RecordType.INSERT\n"
                "        if upsert:\n"
                '            self._append(RecordType.DELETE, ts, encode_table(pa.table({"pk": batch.table[self.pk_name]})))\n'
                "        end = self._append(rtype, ts, payload)\n",
            ),
        ),
    ),
    Mutant(
        "mvcc-off-by-one",
        "MVCC off by one: a delete visible only after S == deleted_at (>= for > in SegmentView.visible)",
        (
            Edit(
                "src/keeldb/engine/segment.py",
                "        mask = (self.ts <= snapshot_ts) & (self.deleted_at > snapshot_ts)\n",
                "        mask = (self.ts <= snapshot_ts) & (self.deleted_at >= snapshot_ts)\n",
            ),
        ),
    ),
    Mutant(
        "compaction-two-commits",
        "compaction in two commits: add the output, then drop the inputs",
        (Edit("src/keeldb/engine/compaction.py", _COMMIT, _TWO_COMMITS),),
    ),
    Mutant(
        "ack-before-append",
        "acknowledge before the log append, the append microseconds later",
        (Edit(COLLECTION, _WRITE, _late_append(0)),),
    ),
    Mutant(
        "gc-deletes-live-file",
        "GC keeps only the older retained manifest's files, deleting files the newest one names",
        (
            Edit(
                "src/keeldb/storage/gc.py",
                "            files=frozenset().union(*(m.files() for m in retained)),\n",
                "            files=frozenset(retained[-1].files()) if retained else frozenset(),\n",
            ),
        ),
    ),
    Mutant(
        "manifest-unverified",
        "a torn or damaged manifest accepted: metadata files are trusted when their JSON parses (length and CRC unchecked)",
        (
            Edit("src/keeldb/storage/framed.py", "    if len(data) != length:\n", "    if False:\n"),
            Edit("src/keeldb/storage/framed.py", "    if zlib.crc32(data) != crc:\n", "    if False:\n"),
        ),
        blind="no fault damages a committed manifest: it is fsynced before it is renamed into place, so a "
        "crash or a power cut (torn or not) leaves the previous version or the new one whole",
    ),
    Mutant(
        "flush-drops-deletes",
        "a flush that drops the delete buffer (the frozen deletes are never written)",
        (Edit(COLLECTION, "            if del_pks:\n", "            if False:\n"),),
    ),
    Mutant(
        "replica-skips-chunk",
        "a cluster read replica that skips a log chunk (the first chunk of each log after an end marker)",
        (
            Edit(
                "src/keeldb/cluster/store.py",
                "                    number, chunk = number + 1, 0\n",
                "                    number, chunk = number + 1, 1\n",
            ),
        ),
        tests=CLUSTER_TESTS,
        chaos=("--target", "cluster"),
    ),
    # -- collection TTL: rows leave by the clock (chaos: --workload ttl, chaos/expiry.py) -----
    Mutant(
        "ttl-lost-on-reopen",
        "a reopened collection forgets its TTL (the catalog's collection.ttl.seconds is not passed on): expired rows come back after a restart",
        (Edit("src/keeldb/engine/database.py", "            ttl_seconds=entry.ttl_seconds,\n", "            ttl_seconds=0,\n"),),
        tests=TTL_TESTS,
        chaos=("--workload", "ttl"),
    ),
    Mutant(
        "ttl-early-reclaim",
        "compaction reclaims versions two seconds before they expire (its TTL cut taken at the horizon + 2 s)",
        (
            Edit(
                "src/keeldb/engine/compaction.py",
                "        parts, keeps = [], []\n        cut = self.expire_cutoff(horizon)\n",
                "        parts, keeps = [], []\n        cut = self.expire_cutoff(horizon + (2000 << 18))\n",
            ),
        ),
        tests=TTL_TESTS,
        chaos=("--workload", "ttl"),
    ),
    # -- dropped fsyncs: invisible to SIGKILL (the page cache survives), seen by power cuts ----
    Mutant(
        "no-log-fsync",
        "group commit acknowledges without the log's fdatasync",
        (Edit("src/keeldb/storage/log_writer.py", "        sync_fd(self._fd, data_only=True)\n", "        pass\n"),),
    ),
    Mutant(
        "no-new-log-dir-fsync",
        "a new log file's directory entry is not fsynced (acknowledged writes in it lost with its name)",
        (
            Edit(
                "src/keeldb/storage/store.py",
                "        fsync_dir(self.wal_dir)  # the new log's name must survive a crash before its first sync\n",
                "",
            ),
        ),
    ),
    Mutant(
        "no-file-fsync",
        "write_durable does not fsync the file (segment, delete, manifest, catalog and oracle files)",
        (Edit("src/keeldb/storage/fs.py", "        write_all(fd, data)\n        sync_fd(fd)\n", "        write_all(fd, data)\n"),),
    ),
    Mutant(
        "no-rename-dir-fsync",
        "atomic_replace does not fsync the directory after its rename (manifests, CATALOG, TSO)",
        (Edit("src/keeldb/storage/fs.py", "    fsync_dir(path.parent)\n\n\ndef makedirs_durable", "\n\ndef makedirs_durable"),),
        blind="only the CATALOG's rename matters (manifests are covered by GC's directory fsync, the oracle "
        "by recovery's observe), and chaos changes the catalog once, before its first fault: the next "
        "restart starts from what is on disk, which a later power cut cannot take back",
    ),
    Mutant(
        "no-manifest-dir-fsync",
        "the manifest's rename is not followed by a directory fsync (catalog and oracle still are)",
        (
            Edit(
                "src/keeldb/storage/fs.py",
                "    fsync_dir(path.parent)\n\n\ndef makedirs_durable",
                '    if not path.name.startswith("MANIFEST-"):\n        fsync_dir(path.parent)\n\n\ndef makedirs_durable',
            ),
        ),
        equivalent="until a directory fsync the previous manifest stays the one recovery reads, and every "
        "file and log it needs is still there: GC unlinks only what neither of the two newest versions "
        "needs, and fsyncs the collection directory (making the rename durable with the unlinks) before "
        "the log directory, whose unlinked logs are the only thing the previous version could miss",
    ),
    Mutant(
        "no-publish-dir-fsync",
        "new segment, delete and index files are not followed by a directory fsync before the commit",
        (Edit("src/keeldb/storage/store.py", "        fsync_dir(self.dir)\n", "        pass\n"),),
        equivalent="the files live in the manifest's own directory, and the manifest commit fsyncs that "
        "directory after its rename: no manifest can name a file whose directory entry is not durable; a "
        "file no manifest names is garbage anyway",
    ),
)


def by_name(names: str | None) -> list[Mutant]:
    """Every mutant, or those named in a comma list (unknown names refused)."""
    if not names:
        return list(MUTANTS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown mutants {unknown}; known: {', '.join(known)}")
    return [known[n] for n in wanted]
