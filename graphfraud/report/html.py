"""`report.html`: one self-contained page (inline CSS, inline SVG charts drawn here; no script,
no web font, no CDN), readable offline in any browser and in a mail client that shows HTML.

Every text that comes from data (ring ids, kinds, reasons, masked values, feature names) goes
through `html.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from graphfraud.report.contents import Count, RunReport

CURRENT = "#2563eb"
PREVIOUS = "#a3a3a3"
WARN = "#d97706"
OK = "#15803d"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;
margin:0;background:#f8fafc}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}
.sub{color:#6b7280;margin:0 0 18px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 18px;
margin:0 0 16px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.kpi{border:1px solid #e5e7eb;border-radius:6px;padding:8px 10px}
.kpi b{display:block;font-size:20px}.kpi span{color:#6b7280;font-size:12px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:800px){.two{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f1f5f9}
th{color:#6b7280;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fffbeb;border-color:#fcd34d}.warn li{margin:2px 0}
.ok{background:#f0fdf4;border-color:#86efac}
.up{color:#b91c1c}.down{color:#1d4ed8}.muted{color:#9ca3af}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;border-radius:2px}
code{font-size:12px;background:#f1f5f9;padding:1px 4px;border-radius:3px}
svg text{font:11px system-ui,sans-serif;fill:#4b5563}
"""


def render_html(report: RunReport) -> str:
    """The whole page for `report`."""
    parts = [
        _header(report),
        _warnings(report),
        _kpis(report),
        _scores(report),
        _drift(report),
        _rings(report),
        '<div class="two">',
        _links(report),
        _hubs(report),
        "</div>",
        '<div class="two">',
        _quarantine(report),
        _model(report),
        "</div>",
        _stages(report),
    ]
    title = escape(f"graphfraud run {report.run_id}")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body><main>" + "\n".join(parts) + "</main></body></html>\n"
    )


# ---- sections -----------------------------------------------------------------------------
def _header(r: RunReport) -> str:
    against = (
        f"compared with the previous run <code>{escape(r.previous_run_id)}</code>"
        if r.previous_run_id
        else "first night: no previous run to compare with"
    )
    return (
        f"<h1>graphfraud run <code>{escape(r.run_id)}</code></h1>"
        f'<p class="sub">status {escape(r.status)} · started {escape(r.created_at)} · '
        f"{r.seconds:,.1f} s · peak memory {r.peak_rss_mb:,.0f} MB · {against}</p>"
    )


def _warnings(r: RunReport) -> str:
    if not r.warnings:
        text = "No drift warnings." if r.previous_run_id else "No warnings (no previous run)."
        return f'<section class="ok"><h2>Warnings</h2><p>{text}</p></section>'
    items = "".join(f"<li><b>{escape(w.code)}</b>: {escape(w.message)}</li>" for w in r.warnings)
    return (
        f'<section class="warn"><h2>Warnings ({len(r.warnings)})</h2><ul>{items}</ul>'
        '<p class="muted">Thresholds: GRAPHFRAUD_REPORT__* settings; '
        "<code>graphfraud run --fail-on-drift</code> exits 3 on any of these.</p></section>"
    )


def _kpis(r: RunReport) -> str:
    cards = "".join(
        f'<div class="kpi"><b>{c.current:,}</b><span>{escape(c.label)}{_delta(c)}</span></div>'
        for c in (r.users, r.labelled, r.high_scores, r.rings, r.largest_ring)
    )
    return f'<section><div class="grid">{cards}</div></section>'


def _scores(r: RunReport) -> str:
    labels = [f"{e:.2f}" for e in r.score_edges[:-1]]
    series = [("tonight", [float(c) for c in r.score_counts], CURRENT)]
    if r.previous_score_counts is not None:
        series.insert(0, ("previous run", [float(c) for c in r.previous_score_counts], PREVIOUS))
    psi = (
        f"score PSI against the previous run: <b>{_fmt_psi(r.score_psi)}</b>"
        if r.score_psi is not None
        else "no previous run: no PSI"
    )
    return (
        "<section><h2>Score distribution</h2>"
        f"<p>{psi} · users per score bin (square-root scale){_legend(series)}</p>"
        + bar_chart(labels, series, sqrt=True, label_every=2)
        + "</section>"
    )


def _drift(r: RunReport) -> str:
    if not r.feature_psi:
        return (
            '<section><h2>Feature drift (PSI)</h2><p class="muted">No previous run with '
            "features to compare with.</p></section>"
        )
    top = list(r.feature_psi[:15])
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{_fmt_psi(value)}</td></tr>"
        for name, value in r.feature_psi
    )
    return (
        "<section><h2>Feature drift (PSI against the previous run)</h2>"
        f"<p>The {len(top)} largest of {len(r.feature_psi)} features; &lt; 0.1 is noise, "
        "0.1–0.25 a shift, &gt; 0.25 a different population.</p>"
        + hbar_chart(top, marks=(0.1, 0.25), fmt=_fmt_psi)
        + f"<details><summary>all features</summary><table><tr><th>feature</th>"
        f"<th class=n>PSI</th></tr>{rows}</table></details></section>"
    )


def _rings(r: RunReport) -> str:
    series = [("tonight", [float(c.current) for c in r.ring_sizes], CURRENT)]
    if r.previous_run_id is not None:
        series.insert(0, ("previous run", [float(c.previous or 0) for c in r.ring_sizes], PREVIOUS))
    if r.ring_events is None:
        events = '<p class="muted">No ring events in this run (no ring_events.parquet).</p>'
    else:
        events = _count_table("event", r.ring_events, previous=False)
    return (
        '<section><h2>Rings</h2><div class="two"><div>'
        f"<p>rings per size{_legend(series)}</p>"
        + bar_chart([c.label for c in r.ring_sizes], series, sqrt=True, width=480, height=200)
        + f"</div><div><p>ring events (lineage against the previous run)</p>{events}</div>"
        "</div></section>"
    )


def _links(r: RunReport) -> str:
    return (
        "<section><h2>Links per kind</h2>"
        + (_count_table("kind", r.links, previous=r.previous_run_id is not None) if r.links else "")
        + "</section>"
    )


def _hubs(r: RunReport) -> str:
    if not r.hubs:
        return "<section><h2>Top hub identifiers</h2><p class=muted>none</p></section>"
    rows = "".join(
        f"<tr><td>{escape(h.kind)}</td><td><code>{escape(h.value)}</code></td>"
        f"<td class=n>{h.support:,}</td></tr>"
        for h in r.hubs
    )
    return (
        "<section><h2>Top hub identifiers</h2><p class=muted>values masked; support = users "
        "holding the value</p><table><tr><th>kind</th><th>value</th><th class=n>users</th></tr>"
        f"{rows}</table></section>"
    )


def _quarantine(r: RunReport) -> str:
    inputs = _count_table("input", r.inputs, previous=r.previous_run_id is not None, unit="rows")
    if r.quarantine:
        rows = "".join(
            f"<tr><td>{escape(q.role)}</td><td>{escape(q.reason)}</td>"
            f"<td class=n>{q.rows:,}</td></tr>"
            for q in r.quarantine
        )
        table = f"<table><tr><th>input</th><th>reason</th><th class=n>rows</th></tr>{rows}</table>"
    else:
        table = "<p>No row quarantined.</p>"
    return f"<section><h2>Inputs and quarantine</h2>{inputs}<p></p>{table}</section>"


def _model(r: RunReport) -> str:
    m = r.model
    against = escape(m.promoted_version) if m.promoted_version else "none promoted"
    rows = "".join(
        f"<tr><td>{escape(x.name)}</td><td class=n>{_fmt_metric(x.tonight)}</td>"
        f"<td class=n>{_fmt_metric(x.promoted)}</td></tr>"
        for x in m.metrics
    )
    lines = [f"scored by <code>{escape(m.version)}</code> ({escape(m.kind)})"]
    if m.retrain:
        lines.append(f"retrain: {escape(m.retrain)}")
    if m.promotion:
        lines.append(escape(m.promotion))
    return (
        "<section><h2>Model</h2><p>"
        + "<br>".join(lines)
        + "</p><table><tr><th>metric</th><th class=n>tonight</th>"
        f"<th class=n>promoted ({against})</th></tr>{rows}</table></section>"
    )


def _stages(r: RunReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td><td class=n>{s.seconds:,.2f}</td>"
        f"<td class=n>{s.peak_rss_mb:,.0f}</td></tr>"
        for s in r.stages
    )
    chart = hbar_chart(
        [(s.name, s.seconds) for s in r.stages], width=480, fmt=lambda v: f"{v:,.1f} s"
    )
    return (
        '<section><h2>Stages</h2><div class="two"><div>'
        + chart
        + "</div><div><table><tr><th>stage</th><th class=n>seconds</th>"
        f"<th class=n>peak RSS (MB)</th></tr>{rows}</table></div></div></section>"
    )


# ---- pieces -------------------------------------------------------------------------------
def _delta(c: Count) -> str:
    if c.previous is None:
        return ""
    diff = c.current - c.previous
    if diff == 0:
        return ' <span class="muted">(=)</span>'
    cls = "up" if diff > 0 else "down"
    return f' <span class="{cls}">({diff:+,})</span>'


def _count_table(
    head: str, counts: Sequence[Count], *, previous: bool = True, unit: str = "count"
) -> str:
    """A table of counts tonight, and beside them the previous run's and the change."""
    heads = f"<th>{escape(head)}</th><th class=n>{escape(unit)}</th>"
    if previous:
        heads += "<th class=n>previous</th><th class=n>change</th>"
    rows = []
    for c in counts:
        cells = f"<td>{escape(c.label)}</td><td class=n>{c.current:,}</td>"
        if previous:
            before = "–" if c.previous is None else f"{c.previous:,}"
            cells += f"<td class=n>{before}</td><td class=n>{_change(c)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{heads}</tr>{''.join(rows)}</table>"


def _change(c: Count) -> str:
    if c.previous is None:
        return ""
    if c.previous == 0:
        return "new" if c.current else "="
    change = c.current / c.previous - 1
    if abs(change) < 0.0005:
        return "="
    cls = "up" if change > 0 else "down"
    return f'<span class="{cls}">{change:+.1%}</span>'


def _legend(series: Sequence[tuple[str, Sequence[float], str]]) -> str:
    if len(series) < 2:
        return ""
    keys = "".join(f'<span style="background:{c}"></span>{escape(n)}' for n, _, c in series)
    return f' <span class="legend">{keys}</span>'


def _fmt_psi(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}"


def _fmt_metric(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 10 else f"{value:.4f}"


# ---- charts -------------------------------------------------------------------------------
def bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    width: int = 1000,
    height: int = 220,
    sqrt: bool = False,
    label_every: int = 1,
) -> str:
    """Grouped vertical bars, one group per category; `sqrt` scales heights by √value so a
    spike near zero does not flatten the tail (axis ticks say the real counts)."""
    left, bottom, top = 48, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((v for _, values, _ in series for v in values), default=0.0) or 1.0

    def scale(v: float) -> float:
        return math.sqrt(v / peak) if sqrt else v / peak

    n = max(len(categories), 1)
    group = plot_w / n
    bar = group * 0.8 / max(len(series), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img">'
    ]
    for tick in _ticks(peak, sqrt):
        y = top + plot_h * (1 - scale(tick))
        out.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef2f7"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_short(tick)}</text>'
        )
    for s, (name, values, colour) in enumerate(series):
        for i, v in enumerate(values):
            h = plot_h * scale(v)
            x = left + i * group + group * 0.1 + s * bar
            out.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(name)} '
                f"{escape(categories[i])}: {v:,.0f}</title></rect>"
            )
    for i, label in enumerate(categories):
        if i % label_every:
            continue
        x = left + i * group + group / 2
        out.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/></svg>'
    )
    return "".join(out)


def hbar_chart(
    rows: Sequence[tuple[str, float]],
    *,
    width: int = 1000,
    marks: Sequence[float] = (),
    fmt: Callable[[float], str] | None = None,
) -> str:
    """Horizontal bars with their value; `marks` draw dashed threshold lines (bars past the
    last mark are drawn in the warning colour)."""
    label_w, row_h, value_w = min(220, width // 4), 18, 70
    plot_w = width - label_w - value_w
    height = row_h * max(len(rows), 1) + 6
    peak = max([v for _, v in rows if math.isfinite(v)] + list(marks) + [1e-9])
    show = fmt or (lambda v: f"{v:,.2f}")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img">'
    ]
    for i, (name, value) in enumerate(rows):
        y = 3 + i * row_h
        w = plot_w * (value / peak if math.isfinite(value) else 0)
        colour = WARN if marks and value >= max(marks) else CURRENT
        out.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(name[:34])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 0.5):.1f}" height="{row_h - 5}" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{escape(show(value))}</text>'
        )
    for mark in marks:
        x = label_w + plot_w * mark / peak
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="{WARN}" '
            'stroke-dasharray="4 3"/>'
        )
    out.append("</svg>")
    return "".join(out)


def _ticks(peak: float, sqrt: bool) -> list[float]:
    """Round tick values up to `peak`: powers of ten on a square-root axis (its low end is
    stretched), the largest round value and its half on a linear one."""
    if peak < 1:
        return []
    step = 10 ** math.floor(math.log10(peak))
    top = max(step * k for k in (1, 2, 5) if step * k <= peak)
    if sqrt:
        return sorted({10.0**k for k in range(1, int(math.log10(peak)) + 1)} | {float(top)})
    return [top / 2, float(top)]


def _short(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"
