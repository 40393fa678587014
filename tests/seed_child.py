"""The seed incident in small, as a child process to be SIGKILLed by tests/test_seed.py.

N base rows (keys 0..N-1); then, concurrently until killed: upsert batches of 200 cycling
from key 0 (each row stamped with its batch number), flushes every 0.25 s, count(*) in a
loop, and searches. The journal records begin/ack of every batch, and any count(*) or
search answer that was wrong while running.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

N = 2000
BATCH = 200
DIM = 8


def vec(pk: int, batch: int) -> list[float]:
    return [pk / 100, batch / 100] + [float((pk + batch * 3 + i) % 11) for i in range(DIM - 2)]


def main(data: Path, journal_path: Path) -> None:
    import keeldb

    events = []
    if journal_path.exists():
        events = [json.loads(x) for x in journal_path.read_text().splitlines() if x.strip()]
    journal = open(journal_path, "a", buffering=1)  # noqa: SIM115
    lock = threading.Lock()

    def note(**e: object) -> None:
        with lock:
            journal.write(json.dumps(e) + "\n")

    client = keeldb.Client(str(data), auto_flush_bytes=1 << 20)
    if not any(e.get("event") == "base" for e in events):
        if client.has_collection("seed"):
            client.drop_collection("seed")  # a kill during the base load: start over
        client.create_collection("seed", dimension=DIM, metric_type="L2")
        for s in range(0, N, 500):
            client.insert("seed", [{"id": k, "vector": vec(k, -1), "b": -1} for k in range(s, s + 500)])
        client.flush("seed")
        note(event="base")
    next_batch = 1 + max([e["batch"] for e in events if "batch" in e], default=-1)
    stop = threading.Event()

    def upserter() -> None:
        b = next_batch
        while not stop.is_set():
            start = (b * BATCH) % N
            keys = range(start, start + BATCH)
            note(event="begin", batch=b)
            client.upsert("seed", [{"id": k, "vector": vec(k, b), "b": b} for k in keys])
            note(event="ack", batch=b)
            b += 1

    def flusher() -> None:
        while not stop.is_set():
            time.sleep(0.25)
            client.flush("seed")

    def counter() -> None:
        while not stop.is_set():
            c = client.query("seed", filter="", output_fields=["count(*)"])[0]["count(*)"]
            if c != N:
                note(event="violation", what=f"count(*) {c} while running")

    def searcher() -> None:
        while not stop.is_set():
            hits = client.search("seed", [vec(7, -1), vec(1500, 3)], limit=20, output_fields=["b"])
            for h in hits:
                ids = [x["id"] for x in h]
                if len(ids) != len(set(ids)) or len(ids) != 20:
                    note(event="violation", what=f"search returned {ids}")

    threads = [threading.Thread(target=f, daemon=True) for f in (upserter, flusher, counter, searcher)]
    for t in threads:
        t.start()
    note(event="running")
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 3600)
    stop.set()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main(Path(sys.argv[1]), Path(sys.argv[2]))
