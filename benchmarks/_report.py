"""How the benchmark scripts print their results (imported as ``_report``): a console,
footnotes for errors too long for a table cell, targets shown as met / not met, keeldb's
ratio to Milvus Lite per figure, the side-by-side table of both, and the machine line."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from _common import figure
from rich.console import Console
from rich.table import Table

PEER = "milvus-lite"  # the system keeldb's ratios are taken against


def console(width: int) -> Console:
    """The terminal's width on a terminal; ``width`` columns in a file or a pipe."""
    return Console(width=None if sys.stdout.isatty() else width)


class Footnotes:
    """Numbered notes under a table, for texts (mostly errors) too long for a cell."""

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}

    def number(self, text: str) -> int:
        """The note's number (the same text, the same number)."""
        return self.texts.setdefault(text, len(self.texts) + 1)

    def see(self, text: str, value: object = None) -> str:
        """A cell's pointer to the note: "see [n]", or "but see [n]" beside a ``value``."""
        return f"[red]{'see' if value is None else 'but see'} [{self.number(text)}][/red]"

    def print(self, out: Console) -> None:
        for text, n in self.texts.items():
            out.print(f"[red][{n}][/red] {text}", highlight=False)


def target(text: str, value: float | None, goal: float, *, higher: bool = True,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A target evaluated for display, never asserted: ``met`` is None when ``value`` could
    not be measured."""
    met = None if value is None else value >= goal if higher else value < goal
    return {"target": text, "met": met, **extra}


def target_cell(t: dict[str, Any] | None) -> str:
    """The 'target' column of a results table: the goal and whether this run met it."""
    if not t:
        return ""
    mark = {True: "[green]met[/green]", False: "[yellow]not met[/yellow]", None: "n/a"}
    return f"{t['target']}: {mark[t['met']]}"


def peer_ratios(systems: Mapping[str, dict], metrics: Mapping[str, Mapping[str, Any]]) -> dict:
    """keeldb's advantage per figure, oriented so that > 1 means keeldb is better: keeldb /
    Milvus Lite for throughput, Milvus Lite / keeldb for times. A figure whose info says
    ``"ratio": False`` (a quality such as recall, not a speed) gets none."""
    k = systems.get("keeldb", {}).get("metrics", {})
    m = systems.get(PEER, {}).get("metrics", {})
    out: dict[str, dict] = {}
    for metric, info in metrics.items():
        kv = k.get(metric, {}).get("value")
        mv = m.get(metric, {}).get("value")
        speed = info.get("ratio", True)
        ratio = None
        if speed and kv and mv:
            ratio = kv / mv if info["better"] == "higher" else mv / kv
        how = "keeldb / Milvus Lite" if info["better"] == "higher" else "Milvus Lite / keeldb"
        out[metric] = {
            "value": ratio,
            "computed_as": how if speed else "not a speed: no ratio",
            "greater_is_better_for_keeldb": True,
        }
    return out


def finish(systems: Mapping[str, dict], metrics: Mapping[str, Mapping[str, Any]]) -> dict:
    """Every figure present for every system (even if only to say why it is missing: the
    system's errors, or why it is unavailable), each with its unit and direction; then
    keeldb's ratios to Milvus Lite (see :func:`peer_ratios`)."""
    for entry in systems.values():
        why = "; ".join(entry.get("errors", [])) or entry.get("unavailable_reason") or "not measured"
        _complete(entry, metrics, why)
    return peer_ratios(systems, metrics)


def _complete(entry: dict, metrics: Mapping[str, Mapping[str, Any]], why: str) -> None:
    """A non-finite value is no value."""
    for metric in metrics:
        entry["metrics"].setdefault(metric, figure(None, why))
    for metric, fig in entry["metrics"].items():
        fig["unit"] = metrics[metric]["unit"]
        fig["better"] = metrics[metric]["better"]
        if fig["value"] is not None and not math.isfinite(fig["value"]):
            fig["error"] = fig["error"] or "non-finite value"
            fig["value"] = None


def print_comparison(
    out: Console,
    report: dict,
    *,
    title: str,
    caption: str,
    names: Mapping[str, str],
    labels: Mapping[str, str],
    cell: Callable[[str, dict], str],
    ratio_cell: Callable[[str, dict], str],
) -> None:
    """The side-by-side table: a row per figure (``names``), a column per system, keeldb's
    ratio to Milvus Lite and the issue's target; errors as footnotes below it."""
    systems = report["systems"]
    table = Table(title=title, caption=caption)
    table.add_column("metric")
    for key in systems:
        table.add_column(labels[key], justify="right")
    table.add_column("ratio (>1 = keeldb better)", justify="right")
    table.add_column("target")
    notes = Footnotes()
    for metric, name in names.items():
        cells = []
        for key in systems:
            fig = systems[key]["metrics"][metric]
            text = cell(metric, fig)
            if fig["error"]:
                text += "\n" + notes.see(f"{labels[key]}: {fig['error']}", fig["value"])
            cells.append(text)
        ratio = ratio_cell(metric, report["ratios"][metric])
        table.add_row(name, *cells, ratio, target_cell(report["targets"].get(metric)))
    out.print(table)
    notes.print(out)


def times(r: float | None) -> str:
    """A ratio: "-" when missing, whole numbers from 100x up."""
    return "-" if r is None else f"{r:,.0f}x" if r >= 100 else f"{r:.2f}x"


def print_machine(out: Console, m: Mapping[str, Any]) -> None:
    load = " ".join(f"{x:.2f}" for x in m["loadavg_at_end"] or ()) or "?"
    out.print(
        f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['platform']}, {m['python']}; load average at the end {load}",
        highlight=False,
    )
