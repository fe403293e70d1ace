"""Evidence of a load run for the living documentation: JSON, a Markdown table, an SVG chart.

A scenario that says "no request was lost across the switch" leaves behind what a reader needs
to believe it without re-running it: requests per second by colour and outcome over time, the
instants that matter (the switch, a kill, the deploy's steps) on the same clock, the control
plane's events in the window, and every request in compact form. Files go to
``reports/evidence/<area>/<scenario-slug>.{json,md,svg}``; reports/ is git-ignored (CI keeps
it as an artifact).

The chart is drawn by hand (a few lines of SVG): no plotting library for one line chart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from stack.local.load import LoadRun, series_key
from stack.local.workspace import PROJECT_ROOT, Workspace

EVIDENCE_ROOT = PROJECT_ROOT / "reports" / "evidence"
PALETTE = {"blue": "#1f77b4", "green": "#2ca02c"}
OTHER_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


@dataclass(frozen=True)
class Marker:
    """An instant on the run's clock (epoch seconds), e.g. the listener's switch."""

    at: float
    label: str


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "run"


def per_second(run: LoadRun, bucket_s: float = 1.0) -> tuple[list[float], dict[str, list[int]]]:
    """Requests issued per bucket (per second by default), one series per colour and
    outcome (``blue 200``)."""
    if not run.samples:
        return [], {}
    buckets = math.floor((run.samples[-1].sent - run.started) / bucket_s) + 1
    series: dict[str, list[int]] = {}
    for sample in run.samples:
        counts = series.setdefault(series_key(sample), [0] * buckets)
        counts[min(buckets - 1, int((sample.sent - run.started) // bucket_s))] += 1
    starts = [round(i * bucket_s, 3) for i in range(buckets)]
    return starts, dict(sorted(series.items()))


def events_between(workspace: Workspace, start: float, end: float) -> list[dict[str, Any]]:
    """The control plane's events (its ``events.jsonl``) from ``start`` to ``end``."""
    path = workspace.logs / "events.jsonl"
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if start <= float(event.get("at", 0)) <= end:
            found.append(event)
    return found


def switch_instants(events: Iterable[dict[str, Any]]) -> list[Marker]:
    """The listener's switches among the control plane's events."""
    return [Marker(float(e["at"]), str(e["message"])) for e in events
            if e.get("component") == "alb" and str(e.get("message", "")).startswith("switch")]


def write_evidence(run: LoadRun, area: str, scenario: str, *, markers: Sequence[Marker] = (),
                   events: Sequence[dict[str, Any]] = (), facts: dict[str, Any] | None = None,
                   root: Path = EVIDENCE_ROOT) -> dict[str, Path]:
    """Write ``<root>/<area>/<slug>.json``, ``.md`` and ``.svg``; return their paths."""
    directory = root / area
    directory.mkdir(parents=True, exist_ok=True)
    name = slug(scenario)
    starts, series = per_second(run)
    origin = run.started
    ordered = sorted(markers, key=lambda m: m.at)
    document = {
        "scenario": scenario,
        "plan": asdict(run.plan),
        "started": origin,
        "summary": run.summary(),
        "facts": facts or {},
        "markers": [{"at": m.at, "offset_s": round(m.at - origin, 3), "label": m.label}
                    for m in ordered],
        "events": [{**e, "offset_s": round(float(e["at"]) - origin, 3)} for e in events],
        "per_second": {"start_s": starts, "series": series},
        "samples": {"columns": ["sent_offset_s", "latency_ms", "outcome", "colour", "release"],
                    "rows": [s.row(origin) for s in run.samples]},
    }
    paths = {"json": directory / f"{name}.json", "md": directory / f"{name}.md",
             "svg": directory / f"{name}.svg"}
    paths["json"].write_text(json.dumps(document, indent=1) + "\n")
    paths["svg"].write_text(svg_chart(scenario, starts, series, ordered, origin))
    paths["md"].write_text(markdown(scenario, run, starts, series, ordered, events,
                                    facts or {}, paths["svg"].name))
    return paths


def markdown(scenario: str, run: LoadRun, starts: Sequence[float],
             series: dict[str, list[int]], markers: Sequence[Marker],
             events: Sequence[dict[str, Any]], facts: dict[str, Any], chart: str) -> str:
    summary = run.summary()
    latency = summary["latency_ms"]
    origin = run.started
    lines = [f"# {scenario}", "",
             f"Load: {summary['sent']} GET {run.plan.url} issued at "
             f"{summary['achieved_rate']}/s (asked {run.plan.rate:g}/s); "
             f"{summary['answered']} answered, {summary['missing']} without an answer, "
             f"{summary['not_2xx']} not 2xx, {summary['retried_on_closed_keepalive']} sent "
             f"again after a kept-alive connection closed under them; latency "
             f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, max {latency['max']} ms.",
             ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    lines += [f"- +{m.at - origin:.2f} s: {m.label}" for m in markers]
    lines += ["", f"![requests per second]({chart})", "",
              "Requests issued per second, by the colour that answered and the outcome:", ""]
    keys = list(series)
    lines.append("| t (s) | " + " | ".join(keys) + " | marks |")
    lines.append("|---:|" + "---:|" * len(keys) + "---|")
    for i, start in enumerate(starts):
        marks = "; ".join(m.label for m in markers if start <= m.at - origin < start + 1.0)
        lines.append(f"| {start:g} | " + " | ".join(str(series[k][i]) for k in keys)
                     + f" | {marks} |")
    if events:
        lines += ["", "Control-plane events during the load:", ""]
        lines += [f"- +{float(e['at']) - origin:.2f} s {e['component']}: {e['message']}"
                  for e in events]
    return "\n".join(lines) + "\n"


def svg_chart(title: str, starts: Sequence[float], series: dict[str, list[int]],
              markers: Sequence[Marker], origin: float, width: int = 720,
              height: int = 300) -> str:
    """A line per series (requests per second over time) and a dashed line per marker."""
    left, right, top, bottom = 50, 160, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max(starts[-1] + 1.0 if starts else 1.0, 1.0)
    peak = max([max(v) for v in series.values()] + [1])
    top_value = _nice_ceiling(peak)

    def x(t: float) -> float:
        return left + plot_w * t / span

    def y(v: float) -> float:
        return top + plot_h * (1 - v / top_value)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="18" font-size="13">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
             f'stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
             f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">seconds '
             f'since the load started</text>']
    for value in (0, top_value / 2, top_value):
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                     f'{value:g}</text>')
    for tick in range(0, int(span) + 1, max(1, int(span) // 10)):
        parts.append(f'<text x="{x(tick):.1f}" y="{top + plot_h + 14}" '
                     f'text-anchor="middle">{tick}</text>')
    others = iter(OTHER_COLOURS * 4)
    for row, (key, counts) in enumerate(series.items()):
        colour = key.split(" ", 1)[0]
        stroke = PALETTE.get(colour) if key.endswith((" 200", " 201", " 204")) else None
        stroke = stroke or next(others)
        points = " ".join(f"{x(t + 0.5):.1f},{y(n):.1f}" for t, n in zip(starts, counts,
                                                                          strict=True))
        parts.append(f'<polyline fill="none" stroke="{stroke}" stroke-width="1.5" '
                     f'points="{points}"/>')
        parts.append(f'<text x="{left + plot_w + 10}" y="{top + 12 + 14 * row}" '
                     f'fill="{stroke}">{escape(key)}</text>')
    for marker in markers:
        at = x(marker.at - origin)
        parts.append(f'<line x1="{at:.1f}" y1="{top}" x2="{at:.1f}" y2="{top + plot_h}" '
                     f'stroke="#555" stroke-dasharray="4 3"><title>{escape(marker.label)}'
                     f'</title></line>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice_ceiling(value: float) -> float:
    magnitude = 10 ** math.floor(math.log10(value)) if value > 0 else 1
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)
