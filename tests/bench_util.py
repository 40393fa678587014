"""Shared by the benchmark smoke tests: which systems to run, the child's environment, and
the report a script prints for the JSON it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peer_systems() -> list[str]:
    """keeldb always; Milvus Lite only when it is installed (it is an optional extra)."""
    systems = ["keeldb"]
    try:
        import milvus_lite  # noqa: F401
    except ImportError:
        pass
    else:
        systems.append("milvus-lite")
    return systems


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def check_peer_ratios(report: dict, metrics: tuple[str, ...], lower: tuple[str, ...]) -> None:
    """keeldb's ratio to Milvus Lite, oriented so that > 1 means keeldb is better (``lower``:
    the figures where less is better), from the figures in the same report; None where
    either system lacks the figure."""
    systems = report["systems"]
    for metric in metrics:
        ratio = report["ratios"][metric]["value"]
        k = systems["keeldb"]["metrics"][metric]["value"]
        m = systems.get("milvus-lite", {}).get("metrics", {}).get(metric, {}).get("value")
        if k is None or m is None:
            assert ratio is None, (metric, ratio)
        else:
            assert ratio == (m / k if metric in lower else k / m), (metric, ratio, k, m)


def printed_from_json(script: str, results: Path) -> str:
    """What ``benchmarks/<script>.py``'s ``print_report`` prints for the JSON in ``results``,
    in a child whose stdout is a pipe, as the script's own was. Equal to what the run
    printed iff the JSON holds every field the report reads, with the same values."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        f"import {script}; {script}.print_report(json.loads(open(sys.argv[2]).read()))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "benchmarks"), str(results)],
        capture_output=True, text=True, timeout=120, env=bench_env(), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
