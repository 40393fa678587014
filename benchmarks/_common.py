"""Helpers shared by the benchmark scripts (imported as ``_common``: the scripts run with
``benchmarks/`` first on ``sys.path``)."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge the figures: CPU, memory, load, Python, numpy."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError):
        pass
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gib": mem,
        "loadavg_at_end": load,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
    }


def json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def target_cell(target: dict[str, Any] | None) -> str:
    """The 'target' column of a results table: the goal and whether this run met it."""
    if not target:
        return ""
    mark = {True: "[green]met[/green]", False: "[yellow]not met[/yellow]", None: "n/a"}
    return f"{target['target']}: {mark[target['met']]}"


def bench_main(
    argv: list[str],
    cfg: Any,
    prefix: str,
    run: Any,
    print_report: Any,
    *,
    cleanup: Any = None,
) -> int:
    """The shared shape of every benchmark's ``main``: a stderr log with elapsed seconds, a
    work directory (a temporary one is removed afterwards), the run, the JSON and the
    printed report. ``run(cfg, workdir, log) -> report``; ``cleanup()`` runs whatever
    happens (e.g. kill servers the run started)."""
    import json
    import shlex
    import shutil
    import sys
    import tempfile
    import time

    from rich.console import Console

    err = Console(stderr=True)
    started = time.perf_counter()

    def log(msg: str) -> None:
        err.print(f"[dim]{time.perf_counter() - started:7.1f}s[/dim] {msg}", highlight=False, soft_wrap=True)

    own_workdir = cfg.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=prefix)) if own_workdir else Path(cfg.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = run(cfg, workdir.resolve(), log)
    finally:
        if cleanup is not None:
            cleanup()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report["command"] = shlex.join(["python", sys.argv[0], *argv])
    report["wall_s"] = time.perf_counter() - started
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(report, indent=2, default=json_default) + "\n")
        log(f"wrote {cfg.out}")
    print_report(report)
    return 0


def add_run_options(p: argparse.ArgumentParser, seed: int, what: str) -> None:
    """``--seed``, ``--out`` and ``--workdir``, the same in every script; ``what``: what
    the work directory holds."""
    p.add_argument("--seed", type=int, default=seed, help="numpy seed for the data")
    p.add_argument("--out", type=Path, help="write every figure as JSON to this file")
    p.add_argument("--workdir", type=Path, help=f"where {what} go (default: a temp dir, deleted at the end)")


def fill_defaults(a: argparse.Namespace, quick: dict[str, Any], full: dict[str, Any]) -> None:
    """Options left unset take the ``--quick`` or the full default (explicit options win)."""
    for key, value in (quick if a.quick else full).items():
        if getattr(a, key) is None:
            setattr(a, key, value)


def quiet_pymilvus() -> None:
    """pymilvus logs every failed call with a traceback; the scripts report failures in
    their results. (Import it first: it installs its logging configuration on import.)"""
    import logging

    try:
        import pymilvus  # noqa: F401
    except ImportError:
        return
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("pymilvus")] + ["pymilvus"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _unwind(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def prepare_client_run() -> None:
    """For the scripts that start servers and drive them through pymilvus: SIGTERM/SIGHUP
    unwind through the ``finally`` blocks that stop the servers (no strays), and pymilvus
    stays quiet about failed calls (they are in the results)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _unwind)
    quiet_pymilvus()
