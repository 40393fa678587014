"""The end-of-run report: the history as JSON, and one self-contained HTML page (inline SVG,
no scripts, no network) with a timeline of operations and faults, count(*) over time, and
latencies, followed by the summary and every violation.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from keeldb.chaos.history import FAILED, OK, UNKNOWN, History

COLORS = {OK: "#2e7d32", FAILED: "#c62828", UNKNOWN: "#ef6c00"}
LANES = ("upsert", "insert", "delete", "search", "count", "query", "get", "page", "iterate", "flush", "compact")
W, LANE_H, PAD = 1100, 22, 70


def write_report(out: Path, history: History, summary: dict[str, Any], violations: list[str]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    hist_path = out / "history.json"
    doc = history.to_json()
    doc["summary"] = summary
    doc["violations"] = violations
    hist_path.write_text(json.dumps(doc, default=str))
    html_path = out / "report.html"
    html_path.write_text(render_html(history, summary, violations))
    return hist_path, html_path


def _x(t: float, t_max: float) -> float:
    return PAD + (W - PAD - 10) * (t / t_max if t_max else 0)


def _timeline(history: History, t_max: float) -> str:
    h = LANE_H * len(LANES) + 30
    parts = [f'<svg width="{W}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="11">']
    for i, lane in enumerate(LANES):
        y = 10 + i * LANE_H
        parts.append(f'<text x="4" y="{y + 12}">{lane}</text>')
        parts.append(f'<line x1="{PAD}" x2="{W - 10}" y1="{y + 8}" y2="{y + 8}" stroke="#eee"/>')
    for f in history.faults:
        x1 = _x(f.start, t_max)
        x2 = _x(f.recovered if f.recovered is not None else t_max, t_max)
        parts.append(f'<rect x="{x1:.1f}" y="4" width="{max(1.0, x2 - x1):.1f}" height="{h - 20}" fill="#b0bec5" opacity="0.35"/>')
        parts.append(f'<text x="{x1:.1f}" y="{h - 4}" fill="#37474f">{html.escape(f.kind)}</text>')
    for o in history.ops:
        if o.kind not in LANES or o.complete is None:
            continue
        y = 10 + LANES.index(o.kind) * LANE_H + 8
        x1, x2 = _x(o.invoke, t_max), _x(o.complete, t_max)
        parts.append(
            f'<line x1="{x1:.1f}" x2="{max(x1 + 0.8, x2):.1f}" y1="{y}" y2="{y}" stroke="{COLORS.get(o.outcome, "#000")}" stroke-width="6"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _series(points: list[tuple[float, float]], t_max: float, title: str, color: str) -> str:
    h = 160
    parts = [f'<svg width="{W}" height="{h + 20}" xmlns="http://www.w3.org/2000/svg" font-size="11">']
    parts.append(f'<text x="4" y="12">{html.escape(title)}</text>')
    if points:
        lo = min(v for _, v in points)
        hi = max(v for _, v in points)
        span = (hi - lo) or 1.0

        def y(v: float) -> float:
            return 20 + (h - 30) * (1 - (v - lo) / span)

        parts.append(f'<text x="4" y="{y(hi) + 4:.1f}">{hi:g}</text><text x="4" y="{y(lo) + 4:.1f}">{lo:g}</text>')
        for t, v in points:
            parts.append(f'<circle cx="{_x(t, t_max):.1f}" cy="{y(v):.1f}" r="1.6" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(history: History, summary: dict[str, Any], violations: list[str]) -> str:
    t_max = max([o.complete or o.invoke for o in history.ops] + [1.0])
    counts = [
        (o.invoke, float(o.value))
        for o in history.ops
        if o.kind == "count" and o.outcome == OK and o.value is not None and o.pred is None
    ]
    lat = [(o.invoke, 1000 * (o.complete - o.invoke)) for o in history.ops if o.outcome == OK and o.complete is not None]
    verdict = "PASS: no violations" if not violations else f"FAIL: {len(violations)} violations"
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
        for k, v in summary.items()
        if k != "availability"
    )
    avail = summary.get("availability", {})
    rate_rows = "".join(
        f"<tr><td>{html.escape(kind)}</td>"
        + "".join(
            f"<td>{_pct(phases.get(p))}</td>" for p in ("before", "during", "after")
        )
        + "</tr>"
        for kind, phases in sorted(avail.get("rates", {}).items())
    )
    rec_rows = "".join(
        f"<tr><td>{html.escape(r['fault'])}</td><td>{r['at']:.2f}</td><td>{r['restart_seconds']:.2f}</td>"
        f"<td>{_secs(r['first_ok_seconds'])}</td></tr>"
        for r in avail.get("recoveries", [])
    )
    fault_rows = "".join(
        f"<tr><td>{html.escape(f.kind)}</td><td>{html.escape(f.detail) or '-'}</td><td>{f.start:.2f}</td>"
        f"<td>{_secs(f.recovered)}</td></tr>"
        for f in history.faults
    )
    viol = "".join(f"<li>{html.escape(v)}</li>" for v in violations[:500]) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>keeldb chaos report</title>
<style>body{{font-family:sans-serif;margin:20px;max-width:{W + 40}px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}} .pass{{color:#2e7d32}} .fail{{color:#c62828}}</style>
</head><body>
<h1>keeldb chaos report</h1>
<h2 class="{'pass' if not violations else 'fail'}">{verdict}</h2>
<h3>Timeline</h3><p>Operations by kind (green ok, red failed, orange unknown; query, get,
page and iterate are the reader's filtered reads and the writers' pinned reads, count and
search include filtered ones); grey bands are faults,
from injection until the server answered again. Time in seconds since the workload started
(0&ndash;{t_max:.1f}s).</p>
{_timeline(history, t_max)}
{_series(counts, t_max, "count(*) over time", "#1565c0")}
{_series(lat, t_max, "latency of successful calls (ms)", "#6a1b9a")}
<h3>Summary</h3><table>{rows}</table>
<h3>Faults</h3><p>A crash-point fault arms its share of the cycle of crash points one
after another; a point that the workload did not reach in time says so (the server was then
SIGKILLed instead). A target that did not recover from a fault ends the run: its violation
quotes the server's log.</p>
<table><tr><th>fault</th><th>detail</th><th>at (s)</th><th>server answered again at (s)</th></tr>{fault_rows}</table>
<h3>Availability (success rate by phase)</h3>
<table><tr><th>operation</th><th>before faults</th><th>during faults</th><th>after faults</th></tr>{rate_rows}</table>
<h3>Recoveries</h3>
<table><tr><th>fault</th><th>at (s)</th><th>first successful call after (s)</th><th>workload's first success after (s), after the check</th></tr>{rec_rows}</table>
<h3>Violations</h3><ul>{viol}</ul>
</body></html>"""


def _pct(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("rate") is None:
        return "-"
    return f"{100 * cell['rate']:.1f}% of {cell['total']}"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
