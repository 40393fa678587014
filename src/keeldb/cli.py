"""The ``keeldb`` command: ``chaos`` (the main job), ``serve`` and ``demo``.

``keeldb chaos`` runs the seed scenario of the Milvus incident against a server and checks it
(``keeldb.chaos``); ``keeldb serve`` serves a data directory over Milvus's gRPC protocol
(``keeldb.server``); ``keeldb demo`` shows the embedded engine surviving a kill -9 in seconds.
Each command imports what it needs when it runs, so ``keeldb --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()

_CHILD = r"""
import json, sys
import keeldb
data, rows, batch, dim, journal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = keeldb.Client(data)
j = open(journal, "a", buffering=1)
b = 0
while True:
    start = (b * batch) % rows
    j.write(json.dumps({"begin": b}) + "\n")
    c.upsert("demo", [{"id": k, "vector": [float(k % 7)] * dim, "batch": b} for k in range(start, start + batch)])
    j.write(json.dumps({"ack": b}) + "\n")
    b += 1
"""


def _demo(args: argparse.Namespace) -> int:
    import keeldb

    rows, batch, dim = args.rows, args.batch, args.dim
    tmp = None
    if args.dir:
        data = Path(args.dir)
    else:
        tmp = tempfile.mkdtemp(prefix="keeldb-demo-")
        data = Path(tmp) / "db"
    journal = data.parent / (data.name + ".journal")
    journal.unlink(missing_ok=True)
    console.print(f"[bold]keeldb demo[/] in {data}: {rows:,} rows, upserts of {batch}, then kill -9")

    c = keeldb.Client(str(data))
    if c.has_collection("demo"):
        c.drop_collection("demo")
    c.create_collection("demo", dimension=dim, metric_type="L2")
    t0 = time.perf_counter()
    for s in range(0, rows, 5000):
        c.insert("demo", [{"id": k, "vector": [float(k % 7)] * dim, "batch": -1} for k in range(s, min(rows, s + 5000))])
    c.flush("demo")
    console.print(f"inserted and flushed {rows:,} rows in {time.perf_counter() - t0:.2f}s")
    c.close()

    # The child dies by SIGKILL inside an upsert: after its log append, before the fsync.
    kill_at = random.Random(args.seed).randint(5, 40)
    env = dict(os.environ, KEELDB_CRASH_AT=f"wal.after_append:{kill_at}")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data), str(rows), str(batch), str(dim), str(journal)],
        env=env,
    )
    console.print(f"child upserter killed by signal {-proc.returncode} in the middle of upsert #{kill_at}")

    events = [json.loads(x) for x in journal.read_text().splitlines()]
    acked = [e["ack"] for e in events if "ack" in e]
    t0 = time.perf_counter()
    c = keeldb.Client(str(data))
    reopen = time.perf_counter() - t0
    count = c.query("demo", filter="", output_fields=["count(*)"])[0]["count(*)"]
    got = {r["id"]: r["batch"] for r in c.query("demo", filter="", output_fields=["batch"])}
    expect: dict[int, int] = {k: -1 for k in range(rows)}
    for b in acked:
        for k in range((b * batch) % rows, (b * batch) % rows + batch):
            expect[k] = b
    lost = sum(1 for k, b in expect.items() if got.get(k, -2) < b)
    report = c.recovery_report("demo")
    c.close()

    t = Table(title="after recovery")
    t.add_column("check")
    t.add_column("result")
    t.add_row("count(*)", f"{count:,} (expected exactly {rows:,})")
    t.add_row("distinct keys visible", f"{len(got):,}")
    t.add_row("acknowledged upsert batches", f"{len(acked)}; rows lost: {lost}")
    t.add_row("log records replayed", str(report["records_replayed"]))
    t.add_row("torn tail cut", report["torn_tail"] or "none")
    t.add_row("reopen time", f"{reopen * 1000:.1f} ms")
    console.print(t)
    ok = count == rows and len(got) == rows and lost == 0
    console.print("[green]exact[/]" if ok else "[red]VIOLATION[/]")
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def _serve(args: argparse.Namespace) -> int:
    import logging

    from keeldb.server.main import Security, serve

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cluster = None
    if args.cluster or args.storage:
        from keeldb.server.main import ClusterOptions

        if not (args.cluster and args.storage):
            raise ValueError("--cluster and --storage go together")
        roles = tuple(r for r in args.roles.split(",") if r)
        if not roles or set(roles) - {"write", "read"}:
            raise ValueError(f"--roles must be write, read or write,read (not {args.roles!r})")
        cluster = ClusterOptions(
            etcd=args.cluster,
            storage=args.storage,
            s3_endpoint=args.s3_endpoint,
            s3_access_key=args.s3_access_key,
            s3_secret_key=args.s3_secret_key,
            node_id=args.node_id,
            roles=roles,
            lease_ttl=args.lease_ttl,
            advertise=args.advertise,
        )
    security = Security(
        authorization=args.authorization,
        root_password=os.environ.get("KEELDB_ROOT_PASSWORD") or args.root_password,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        tls_ca=Path(args.tls_ca) if args.tls_ca else None,
        insecure=args.insecure,
    )
    serve(
        Path(args.data), args.host, args.port, auth=args.auth, max_message_mb=args.max_message_mb,
        cluster=cluster, security=security, http_port=args.http_port,
    )
    return 0


FAULT_KINDS_HELP = ("sigkill", "sigstop", "crash-point", "power-cut", "disk-full", "slow-fsync")


def _chaos(args: argparse.Namespace) -> int:
    import logging

    # pymilvus logs every failed call with a traceback; under chaos that is the point.
    import pymilvus  # noqa: F401 - creates its loggers, which we then quieten
    from rich.live import Live
    from rich.text import Text

    from keeldb.chaos.runner import Config, Run, plan

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("pymilvus")] + ["pymilvus"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)

    lo, _, hi = args.interval.partition("-")
    try:
        interval = (float(lo), float(hi or lo))
    except ValueError:
        raise ValueError(f"--interval must be MIN-MAX seconds, not {args.interval!r}") from None
    faults = None
    if args.faults is not None:
        faults = tuple(x.strip() for x in args.faults.split(",") if x.strip())
        unknown = [f for f in faults if f not in FAULT_KINDS_HELP]
        if unknown or not faults:
            raise ValueError(f"--faults: unknown fault kinds {unknown}; choose from {', '.join(FAULT_KINDS_HELP)}")
    out = Path(args.out) if args.out else Path(f"keeldb-chaos-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg = Config(
        target=args.target,
        rows=args.rows,
        dim=args.dim,
        faults=faults,
        count=args.count,
        interval=interval,
        pause=args.pause,
        crash_points=tuple(x.strip() for x in args.crash_points.split(",") if x.strip()),
        crash_wait=args.crash_wait,
        recover_timeout=args.recover_timeout,
        workload="all" if args.long else args.workload,
        churn=not args.no_churn,
        flush_interval=args.flush_interval,
        compact_interval=args.compact_interval,
        index_type=args.index_type,
        out=out,
        keep_data=args.keep_data,
        uri=args.uri,
        kill_cmd=args.kill_cmd,
        restart_cmd=args.restart_cmd,
        pid=args.pid,
        seed=args.seed,
        nodes=args.nodes,
        empty_disk_restarts=args.empty_disk_restarts,
        victims=args.victims,
        lease_ttl=args.lease_ttl,
    )
    runs = plan(cfg)
    failed = 0
    for run_cfg in runs:
        if len(runs) > 1:
            console.print(f"[bold]workload {run_cfg.workload}[/] -> {run_cfg.out}")
        failed += _chaos_run(Run(run_cfg), Live, Text) != 0
    if len(runs) > 1:
        verdict = "[green]every workload passed[/]" if not failed else f"[red]{failed} of {len(runs)} workloads failed[/]"
        console.print(verdict)
    return 1 if failed else 0


def _chaos_run(run: Any, live_cls: Any, text_cls: Any) -> int:
    """One run with live progress (a panel on a terminal, plain lines otherwise), then its
    report."""
    cfg = run.cfg
    status = {"line": "starting"}
    run.progress = lambda msg: status.update(line=msg)

    def render() -> Any:
        h = run.history
        done = [o for o in h.ops if o.complete is not None]
        ok = sum(o.outcome == "ok" for o in done)
        last_count = next(
            (o.value for o in reversed(done) if o.kind == "count" and o.outcome == "ok" and o.pred is None), None
        )
        return text_cls(
            f"{status['line']}\n"
            f"ops {len(done):,} (ok {ok:,}, not ok {len(done) - ok:,})  faults {len(h.faults)}/{cfg.count}  "
            f"last count(*) {last_count}  violations so far {len(run.violations)}"
        )

    if not console.is_terminal:
        # Not a terminal (CI, a log file): one plain line per step instead of a live panel.
        def plain(msg: str) -> None:
            status["line"] = msg
            console.print(f"[{time.strftime('%H:%M:%S')}] {render().plain}", highlight=False)

        run.progress = plain
        result = run.execute()
        return _chaos_finish(result)
    with live_cls(render(), console=console, refresh_per_second=4) as live:
        import threading

        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(0.25):
                live.update(render())

        t = threading.Thread(target=refresh, daemon=True)
        t.start()
        try:
            result = run.execute()
        finally:
            stop.set()
            t.join()
        live.update(render())
    return _chaos_finish(result)


def _chaos_finish(result: Any) -> int:
    from keeldb.chaos.report import write_report

    hist, page = write_report(result.out, result.history, result.summary, result.violations)
    t = Table(title=f"keeldb chaos against {result.summary['target']} ({result.summary['workload']})")
    t.add_column("metric")
    t.add_column("value")
    for key in ("rows", "faults", "fault_kinds", "operations", "reads_ok", "pinned_reads_ok", "violations",
                "recovery_seconds_mean", "recovery_seconds_max", "wall_seconds"):  # fmt: skip
        t.add_row(key, str(result.summary[key]))
    console.print(t)
    for v in result.violations[:30]:
        console.print(f"[red]VIOLATION[/] {v}", highlight=False)
    console.print(f"history: {hist}\nreport:  {page}")
    if result.kept:
        console.print(f"data:    {', '.join(str(p) for p in result.kept)} (--keep-data)")
    console.print("[green]no violations[/]" if not result.violations else f"[red]{len(result.violations)} violations[/]")
    return 0 if not result.violations else 1


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with its default."""


def _command(sub: Any, name: str, func: Any, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, formatter_class=_Help, help=summary, description=description)
    parser.set_defaults(func=func)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keeldb",
        description="keeldb: a vector database that speaks Milvus's protocol and keeps count(*) "
        "exact through kill -9.",
        epilog="Run 'keeldb COMMAND --help' for a command's flags.",
        formatter_class=_Help,
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    c = _command(
        sub, "chaos", _chaos,
        "the seed scenario: concurrent upserts, searches, flushes and counts under kill -9, checked",
        "Start a server, load ROWS base rows, run concurrent upserts of 200 cycling from "
        "key 0, searches, flushes and count(*) while injecting faults, and check every read and "
        "every restart against the history of acknowledged writes (docs/chaos.md).",
    )  # fmt: skip
    c.add_argument("--target", choices=["keeldb", "milvus-lite", "cluster", "external"], default="keeldb",
                   help="what to judge: a keeldb serve this command starts, a milvus-lite server, three "
                        "keeldb cluster nodes with etcd and an object store, or an endpoint you run (--uri)")
    c.add_argument("--rows", type=int, default=100_000,
                   help="base rows, keys 0..ROWS-1 (the Milvus incident used 10,000,000)")
    c.add_argument("--dim", type=int, default=32, help="vector dimension of the collection")
    c.add_argument("--faults", default=None,
                   help=f"comma list of fault kinds, from {','.join(FAULT_KINDS_HELP)} (None: sigkill, "
                        "crash-point, which cycles through every live crash point, and power-cut, which cuts "
                        "the power at them and at random instants, against keeldb; sigkill and crash-point "
                        "(one node armed per fault) against a cluster; sigkill against other targets)")
    c.add_argument("--workload", default="mixed",
                   help="what the writers do: mixed (upserts of 200 and churn of extra keys), insert-only, "
                        "delete-heavy, upsert-only, big-batches (batches of 5,000), partial-update (the upserts as "
                        "partial updates), ttl (a 3 s collection TTL and an inserter: rows expire as everything runs), "
                        "a comma list of them "
                        "applied left to right, or all (each variant in turn, a run each)")
    c.add_argument("--long", action="store_true", help="run every workload variant in turn (--workload all)")
    c.add_argument("--count", type=int, default=5, help="number of faults to inject")
    c.add_argument("--interval", default="1-5", help="seconds of workload between faults, MIN-MAX")
    c.add_argument("--pause", type=float, default=8.0, help="SIGSTOP length in seconds")
    c.add_argument("--crash-points", default="",
                   help="comma list of crash points to arm for the crash-point fault (empty: every live one)")
    c.add_argument("--crash-wait", type=float, default=30.0,
                   help="seconds an armed crash point has to be reached before the server is SIGKILLed instead")
    c.add_argument("--recover-timeout", type=float, default=120.0,
                   help="seconds a restarted server has to serve again before the run reports that it "
                        "did not recover (and stops)")
    c.add_argument("--flush-interval", type=float, default=0.25, help="seconds between the flusher's flushes")
    c.add_argument("--compact-interval", type=float, default=1.0,
                   help="seconds between the compactor's compactions (0: no compactor)")
    c.add_argument("--index-type", default=None, choices=("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "AUTOINDEX"),
                   help="the collection's vector index (None: IVF_FLAT nlist=64 searched with nprobe=16; "
                        "AUTOINDEX against milvus-lite)")
    c.add_argument("--no-churn", action="store_true",
                   help="no inserts/deletes of extra keys (with the default workload: upserts only)")
    c.add_argument("--seed", type=int, default=0, help="seed of the fault schedule and the workload's choices")
    c.add_argument("--out", default=None,
                   help="directory for history.json, report.html and server logs (None: ./keeldb-chaos-<time>)")
    c.add_argument("--keep-data", action="store_true",
                   help="keep the servers' data directories under --out (removed after the run otherwise)")
    e = c.add_argument_group("--target external")
    e.add_argument("--uri", help="endpoint of the external target, e.g. http://127.0.0.1:19530")
    e.add_argument("--kill-cmd", help="shell command that kills the external target")
    e.add_argument("--restart-cmd", help="shell command that starts the external target again")
    e.add_argument("--pid", type=int, help="pid of the external target (SIGKILL / SIGSTOP it directly)")
    g = c.add_argument_group("--target cluster")
    g.add_argument("--nodes", type=int, default=3, help="keeldb nodes (besides etcd and a SeaweedFS object store)")
    g.add_argument("--empty-disk-restarts", action="store_true",
                   help="a killed node comes back with its local data directory deleted")
    g.add_argument("--victims", choices=("random", "cover"), default="random",
                   help="SIGKILL a component uniformly at random, or cover node / etcd / object store "
                        "once in every three faults")
    g.add_argument("--lease-ttl", type=int, default=None,
                   help="the nodes' --lease-ttl in seconds (None: the node's default)")

    s = _command(
        sub, "serve", _serve,
        "serve a data directory over Milvus's gRPC protocol",
        "Serve a data directory to unmodified pymilvus programs. SIGTERM finishes the calls "
        "in flight and closes cleanly; after SIGKILL nothing acknowledged is lost.",
    )
    s.add_argument("--data", required=True, help="data directory (created if missing)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (the default is loopback only)")
    s.add_argument("--port", type=int, default=19530, help="port to listen on (0 picks a free one)")
    s.add_argument("--auth", default=None, help="require this user:password (or token) on every call")
    s.add_argument("--max-message-mb", type=int, default=64, help="largest request or response, in MiB")
    s.add_argument("--http-port", type=int, default=None,
                   help="also serve Milvus's REST API v2, /metrics and /healthz on this port (0 picks a free one; "
                        "None: gRPC only; docs/rest.md)")
    a = s.add_argument_group("access (docs/security.md)")
    a.add_argument("--authorization", action="store_true",
                   help="check every call against Milvus's users, roles and privileges (root: see --root-password)")
    a.add_argument("--root-password", default=None,
                   help="root's password at the first start (needed then on a network address; prefer the "
                        "KEELDB_ROOT_PASSWORD variable: flags show in ps). On loopback the default is 'Milvus'")
    a.add_argument("--tls-cert", default=None, help="serve TLS with this PEM certificate (chain)")
    a.add_argument("--tls-key", default=None, help="the certificate's PEM private key")
    a.add_argument("--tls-ca", default=None, help="require client certificates signed by this PEM CA")
    a.add_argument("--insecure", action="store_true",
                   help="allow a network --host without --authorization (a trusted network only)")
    g = s.add_argument_group("cluster mode (docs/cluster.md; needs pip install 'keeldb[cluster]')")
    g.add_argument("--cluster", metavar="etcd://HOST:PORT", help="join the cluster whose metadata is in this etcd")
    g.add_argument("--storage", metavar="s3://BUCKET/PREFIX", help="object storage for segments, indexes and the log")
    g.add_argument("--s3-endpoint", default=None, help="S3 endpoint URL (None: AWS_ENDPOINT_URL)")
    g.add_argument("--s3-access-key", default=None, help="S3 access key (None: AWS_ACCESS_KEY_ID)")
    g.add_argument("--s3-secret-key", default=None,
                   help="S3 secret key (None: AWS_SECRET_ACCESS_KEY; prefer the variable: flags show in ps)")
    g.add_argument("--node-id", default=None, help="this node's name in the cluster (None: host:port)")
    g.add_argument("--roles", default="write,read", help="write (own shards), read (serve reads), or both")
    g.add_argument("--lease-ttl", type=int, default=5, help="seconds a dead writer keeps its shards")
    g.add_argument("--advertise", default=None, help="address other nodes reach this one at (None: host:port)")

    d = _command(
        sub, "demo", _demo,
        "embedded, in seconds: write, kill -9 mid-upsert, recover, check count(*)",
        "Write a collection with the embedded client, SIGKILL a child process in the middle "
        "of an upsert, reopen and show that count(*) is exact and every acknowledged batch is there.",
    )
    d.add_argument("--dir", help="data directory (None: a temporary one, removed after)")
    d.add_argument("--rows", type=int, default=10_000, help="base rows, keys 0..ROWS-1")
    d.add_argument("--batch", type=int, default=200, help="rows per upsert batch")
    d.add_argument("--dim", type=int, default=32, help="vector dimension")
    d.add_argument("--seed", type=int, default=None, help="seed of the kill point (None: random)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A failure to start (a busy port, an unusable data directory, a missing
    extra, a bad flag value) is one line on stderr and exit code 2, not a traceback: the
    user did nothing wrong that a stack would explain. ``--debug`` shows the traceback."""
    from keeldb.errors import KeelError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (KeelError, OSError, ValueError) as e:
        if args.debug:
            raise
        print(f"keeldb {args.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
