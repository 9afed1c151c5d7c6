"""The standalone HTML diff report: summary, differences, latency and the top disagreements.

Drawn the way the drift report is (:mod:`ferryman.drift._html`, whose page style and
number formatting it shares): one page with Plotly's JavaScript embedded, so it opens
offline and can be mailed or attached to a ticket.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ferryman.drift._html import _STYLE, _e, _n
from ferryman.errors import MissingDependencyError

if TYPE_CHECKING:
    from ferryman.rollout._diff_report import DiffReport, VersionStats

_EXTRA_STYLE = """
.warnings{background:#fff4d6;border:1px solid #e6c35c;padding:.5rem 1rem;margin:1rem 0}
td.inputs{text-align:left;font-family:ui-monospace,monospace;font-size:.8rem;max-width:40rem}
tr.mismatch td{background:#fde2e1}
"""
_MAX_VALUE_CHARS = 60
_SOURCES = {
    "shadow": "live traffic mirrored to the candidate (shadow records)",
    "replay": "captured traffic re-scored offline (replay)",
}


def render_html(report: DiffReport) -> str:
    """Return the report as one HTML page with Plotly's JavaScript embedded.

    Raises:
        MissingDependencyError: Plotly is not installed.
    """
    try:
        import plotly.graph_objects as go  # type: ignore[import-untyped]
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("plotly", feature="HTML diff reports", extra="drift") from exc
    title = "Shadow diff report" if report.source == "shadow" else "Replay diff report"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Ferryman {title.lower()}: {_e(report.endpoint)}</title>",
        f"<style>{_STYLE}{_EXTRA_STYLE}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>{title}: {_e(report.endpoint)}</h1>",
        f"<p class='muted'>Stable {_e(report.stable.version)} against candidate "
        f"{_e(report.candidate.version)}, on {_SOURCES[report.source]}.<br>"
        f"Window: {_e(_moment(report.since))} to {_e(_moment(report.until))}<br>"
        f"Created: {_e(report.created_at.isoformat())}</p>",
        _warnings(report),
        "<h2>Summary</h2>",
        _summary(report),
        "<h2>Versions</h2>",
        _versions(report),
        _differences(report, go),
        "<h2>Latency</h2>",
        _latency(report, go),
        "<h2>Top disagreements</h2>",
        _disagreements(report),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _warnings(report: DiffReport) -> str:
    if not report.warnings:
        return ""
    items = "".join(f"<li>{_e(text)}</li>" for text in report.warnings)
    return f"<div class='warnings'><b>What limits this comparison</b><ul>{items}</ul></div>"


def _summary(report: DiffReport) -> str:
    rows = [
        ("kind", report.kind),
        ("rows compared", str(report.rows_compared)),
    ]
    if report.kind == "classification":
        rows.append(("agreement rate", _n(report.agreement_rate)))
        if report.positive_class is not None:
            rows.append(("positive class", report.positive_class))
    if report.difference_of is not None:
        rows.append((f"mean |difference| of {report.difference_of}", _n(report.mean_abs_diff)))
        rows.append((f"max |difference| of {report.difference_of}", _n(report.max_abs_diff)))
    body = "".join(f"<tr><td>{_e(name)}</td><td>{_e(value)}</td></tr>" for name, value in rows)
    return f"<table>{body}</table>"


def _versions(report: DiffReport) -> str:
    head = (
        "<table><tr><th>version</th><th>role</th><th>requests</th><th>rows</th>"
        "<th>errors</th><th>error rate</th><th>p50 ms</th><th>p99 ms</th>"
        "<th>most frequent errors</th></tr>"
    )
    body = "".join(
        _version_row(stats, role)
        for stats, role in ((report.stable, "stable"), (report.candidate, "candidate"))
    )
    return head + body + "</table>"


def _version_row(stats: VersionStats, role: str) -> str:
    reasons = "<br>".join(f"{count} x {_e(reason)}" for reason, count in stats.error_reasons)
    return (
        f"<tr><td>{_e(stats.version)}</td><td>{role}</td><td>{stats.requests}</td>"
        f"<td>{stats.rows}</td><td>{stats.errors}</td><td>{_n(stats.error_rate)}</td>"
        f"<td>{_n(stats.p50_latency_ms)}</td><td>{_n(stats.p99_latency_ms)}</td>"
        f"<td class='inputs'>{reasons}</td></tr>"
    )


def _differences(report: DiffReport, go: Any) -> str:
    parts: list[str] = []
    if report.confusion is not None:
        labels = list(report.confusion.labels)
        figure = go.Figure(
            go.Heatmap(
                z=[list(row) for row in report.confusion.counts],
                x=labels,
                y=labels,
                colorscale="Blues",
                texttemplate="%{z}",
                hovertemplate="stable %{y}, candidate %{x}: %{z} rows<extra></extra>",
            )
        )
        figure.update_layout(
            xaxis_title=f"candidate ({report.candidate.version})",
            yaxis_title=f"stable ({report.stable.version})",
            xaxis_type="category",
            yaxis_type="category",
            yaxis_autorange="reversed",
        )
        parts.append("<h2>Stable against candidate labels</h2>" + _plot(figure))
    histogram = report.histogram
    if histogram is not None:
        edges = list(histogram.edges)
        centres = [(a + b) / 2 for a, b in pairwise(edges)]
        widths = [max(b - a, 1e-12) for a, b in pairwise(edges)]
        figure = go.Figure(go.Bar(x=centres, y=list(histogram.counts), width=widths))
        figure.update_layout(
            xaxis_title=f"candidate - stable, {histogram.of}", yaxis_title="rows", bargap=0.02
        )
        parts.append(f"<h2>Differences of the {_e(histogram.of)}</h2>" + _plot(figure))
    return "\n".join(parts)


def _latency(report: DiffReport, go: Any) -> str:
    if report.source == "replay":
        note = (
            "Stable: as captured (the whole server path). Candidate: model time (validation "
            "and prediction) of requests re-scored one at a time on the machine that ran the "
            "replay; compare orders of magnitude, not small differences."
        )
    else:
        note = (
            "Both as captured by the server: the stable version's time to answer, and the "
            "candidate's time for its mirrored copy (decoding, validation and model)."
        )
    figure = go.Figure()
    for stats, role in ((report.stable, "stable"), (report.candidate, "candidate")):
        figure.add_trace(
            go.Bar(
                x=["p50", "p99"],
                y=[stats.p50_latency_ms, stats.p99_latency_ms],
                name=f"{role} {stats.version}",
            )
        )
    figure.update_layout(barmode="group", yaxis_title="milliseconds per request")
    return f"<p class='muted'>{_e(note)}</p>" + _plot(figure)


def _disagreements(report: DiffReport) -> str:
    if not report.disagreements:
        return "<p>None: the versions gave the same answers on every compared row.</p>"
    head = (
        "<table><tr><th>#</th><th>request</th><th>time</th><th>stable</th><th>candidate</th>"
        "<th>difference</th><th>inputs</th></tr>"
    )
    rows = [head]
    for rank, item in enumerate(report.disagreements, start=1):
        request = _e(f"{item.request_id or ''}:{'' if item.row is None else item.row}")
        rows.append(
            f"<tr class='{'' if item.agree else 'mismatch'}'><td>{rank}</td><td>{request}</td>"
            f"<td>{_e(_moment(item.time))}</td>"
            f"<td>{_e(_answer(item.stable, item.stable_probabilities))}</td>"
            f"<td>{_e(_answer(item.candidate, item.candidate_probabilities))}</td>"
            f"<td>{_n(item.difference)}</td><td class='inputs'>{_e(_inputs(item.inputs))}</td>"
            "</tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _answer(prediction: Any, probabilities: dict[str, float] | None) -> str:
    text = _short(prediction)
    if probabilities:
        shown = ", ".join(f"{k}: {v:.3f}" for k, v in probabilities.items() if v is not None)
        text += f" ({shown})"
    return text


def _inputs(inputs: dict[str, Any] | None) -> str:
    if not inputs:
        return ""
    return "; ".join(f"{name}={_short(value)}" for name, value in inputs.items())


def _short(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _moment(value: Any) -> str:
    return "" if value is None else str(value.isoformat())


def _plot(figure: Any) -> str:
    figure.update_layout(height=360, margin={"l": 60, "r": 20, "t": 20, "b": 50})
    return str(figure.to_html(full_html=False, include_plotlyjs=False))
