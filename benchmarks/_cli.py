"""The command line every benchmark script shares (imported as ``_cli``): the flags they have
in common and their checks, and ``main``: parse, run in a work directory, write the JSON,
print the report — or, for the hidden ``_worker`` sub-command, run one measurement in this
child process (``_workers``)."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from _common import json_default, machine_info
from _workers import WORKER_COMMAND, exit_worker

RESULT_SCHEMA = 1  # every report's "schema": bumped when a report's layout changes

Log = Callable[[str], None]
Run = Callable[[argparse.Namespace, Path, Log], dict]
WorkerMain = Callable[[Sequence[str]], int]


# -- flags --------------------------------------------------------------------------------


def add_run_options(p: argparse.ArgumentParser, seed: int, what: str) -> None:
    """``--seed``, ``--out`` and ``--workdir``, the same in every script; ``what``: what
    the work directory holds."""
    p.add_argument("--seed", type=int, default=seed, help="numpy seed for the data")
    p.add_argument("--out", type=Path, help="write every figure as JSON to this file")
    p.add_argument("--workdir", type=Path, help=f"where {what} go (default: a temp dir, "
                   "deleted at the end; a directory given here is kept)")  # fmt: skip


def add_quick_option(p: argparse.ArgumentParser) -> None:
    """``--quick``: tiny sizes (see :func:`fill_defaults`)."""
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes for CI (options given explicitly still win)")  # fmt: skip


def fill_defaults(a: argparse.Namespace, quick: dict[str, Any], full: dict[str, Any]) -> None:
    """Options left unset take the ``--quick`` or the full default (explicit options win)."""
    for key, value in (quick if a.quick else full).items():
        if getattr(a, key) is None:
            setattr(a, key, value)


def add_sizes(p: argparse.ArgumentParser, full: dict[str, Any], texts: dict[str, str]) -> None:
    """An option per ``texts`` key (``concurrent_queries`` -> ``--concurrent-queries``) of
    the type of its value in ``full``, which the help shows as the default; the option
    itself defaults to None, for :func:`fill_defaults`."""
    for key, text in texts.items():
        value = full[key]
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), help=f"{text} (default {shown})")


def settings(cfg: argparse.Namespace, *options: str, **renamed: str) -> dict[str, Any]:
    """The report's record of the options a run used: ``options`` under their own names,
    then each of ``renamed`` (report name -> option name)."""
    out = {name: getattr(cfg, name) for name in options}
    out.update({name: getattr(cfg, option) for name, option in renamed.items()})
    return out


def add_child_timeout(p: argparse.ArgumentParser, default: float) -> None:
    p.add_argument("--child-timeout", type=float, default=default,
                   help=f"seconds before a measurement child is abandoned (default {default:g})")  # fmt: skip


def names(p: argparse.ArgumentParser, flag: str, text: str, allowed: Sequence[str], *,
          upper: bool = False, empty: bool = False) -> list[str]:  # fmt: skip
    """A comma-separated option as a list, each from ``allowed`` (``empty``: none is fine)."""
    values = [t.strip() for t in text.split(",") if t.strip()]
    if upper:
        values = [v.upper() for v in values]
    unknown = [v for v in values if v not in allowed]
    if unknown or not (values or empty):
        p.error(f"{flag}: unknown {unknown}; choose from {', '.join(allowed)}")
    return values


def at_least_one(p: argparse.ArgumentParser, a: argparse.Namespace, options: Sequence[str]) -> None:
    for name in options:
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")


# -- main ---------------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None,
    parse_args: Callable[[Sequence[str]], argparse.Namespace],
    prefix: str,
    run: Run,
    print_report: Callable[[dict], None],
    *,
    worker_main: WorkerMain | None = None,
    client_run: bool = False,
) -> int:
    """Every script's ``main``. ``run(cfg, workdir, log) -> report`` in ``--workdir`` (else a
    temporary directory, removed afterwards); the report gets the schema, the machine, the
    command and the wall time, goes to ``--out`` as JSON and is printed. ``client_run``: the script starts
    servers and drives them through pymilvus (see :func:`prepare_client_run`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if worker_main is not None and argv[:1] == [WORKER_COMMAND]:
        return worker_main(argv[1:])
    cfg = parse_args(argv)
    if client_run:
        prepare_client_run()

    from rich.console import Console

    err = Console(stderr=True)
    started = time.perf_counter()

    def log(msg: str) -> None:
        err.print(f"[dim]{time.perf_counter() - started:7.1f}s[/dim] {msg}", highlight=False, soft_wrap=True)

    own_workdir = cfg.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=prefix)) if own_workdir else Path(cfg.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = {"schema": RESULT_SCHEMA, "machine": None, **run(cfg, workdir.resolve(), log)}
        report["machine"] = machine_info()  # at the end: its load average is the run's
    finally:
        stop_started_servers()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report["command"] = shlex.join(["python", sys.argv[0], *argv])
    report["wall_s"] = time.perf_counter() - started
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(report, indent=2, default=json_default) + "\n")
        log(f"wrote {cfg.out}")
    print_report(report)
    return 0


def run_script(main: Callable[[], int], worker_main: WorkerMain | None = None) -> NoReturn:
    """A script's ``if __name__ == "__main__"``: a worker child ends through
    :func:`_workers.exit_worker`, everything else with ``main``'s exit code."""
    if worker_main is not None and sys.argv[1:2] == [WORKER_COMMAND]:
        exit_worker(worker_main(sys.argv[2:]))
    sys.exit(main())


def stop_started_servers() -> None:
    """Whatever servers the run started and left running (``keeldb.testing``'s registry of
    processes; a script that never imported it started none)."""
    process = sys.modules.get("keeldb.testing.process")
    if process is not None:
        process.stop_all_running()


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
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _unwind)
    quiet_pymilvus()
