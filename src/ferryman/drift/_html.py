"""The standalone HTML drift report, drawn with Plotly (imported here and only here)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ferryman.errors import MissingDependencyError

if TYPE_CHECKING:
    from ferryman.drift.concept import ConceptSection
    from ferryman.drift.dataset import FeatureDrift
    from ferryman.drift.report import DriftReport

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.drifted td{background:#fde2e1}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.6rem;font-weight:600}
.yes{background:#d93025;color:#fff}.no{background:#1e8e3e;color:#fff}
.feature{border-top:1px solid #eee;margin-top:1.5rem;padding-top:.5rem}
.muted{color:#666}
"""


def render_html(report: DriftReport, *, extra: Sequence[str] = ()) -> str:
    """Return the report as one HTML page with Plotly's JavaScript embedded.

    Args:
        report: The report.
        extra: Further sections (HTML fragments), placed before the features.

    Raises:
        MissingDependencyError: Plotly is not installed.
    """
    try:
        import plotly.graph_objects as go  # type: ignore[import-untyped]
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("plotly", feature="HTML drift reports", extra="drift") from exc
    data = report.data
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>Ferryman drift report</title>",
        f"<style>{_STYLE}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        "<h1>Drift report</h1>",
        f"<p class='muted'>Reference: {_e(report.reference)}<br>Current: {_e(report.current)}"
        f"<br>Created: {_e(report.created_at.isoformat())}</p>",
        f"<h2>Dataset drift: {_badge(data.dataset_drift)}</h2>",
        f"<p>{data.n_drifted} of {data.n_tested} tested features drifted "
        f"({data.drifted_share:.0%}; the dataset drifts from {data.drift_share:.0%}). "
        f"False discovery rate {data.fdr:g}. {data.n_reference} reference rows, "
        f"{data.n_current} current rows.</p>",
        _summary_table(data.features),
        _multivariate(report),
        _predictions(report),
        *extra,
        "<h2>Features</h2>",
    ]
    for feature in data.features:
        parts.append(_feature_block(feature, go))
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(features: tuple[FeatureDrift, ...]) -> str:
    head = (
        "<table><tr><th>feature</th><th>kind</th><th>status</th><th>test</th>"
        "<th>statistic</th><th>p-value</th><th>q-value</th><th>effect size</th>"
        "<th>threshold</th><th>drifted</th></tr>"
    )
    rows = [head]
    for f in features:
        rows.append(
            f"<tr class='{'drifted' if f.drifted else ''}'><td><a href='#f-{_e(f.name)}'>"
            f"{_e(f.name)}</a></td><td>{_e(f.kind or '')}</td><td>{_e(f.status.value)}</td>"
            f"<td>{_e(f.test or '')}</td><td>{_n(f.statistic)}</td><td>{_n(f.p_value)}</td>"
            f"<td>{_n(f.q_value)}</td><td>{_n(f.effect_size)}</td><td>{_n(f.threshold)}</td>"
            f"<td>{'yes' if f.drifted else 'no'}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _multivariate(report: DriftReport) -> str:
    section = report.multivariate
    if section.result is None:
        return _unavailable("Multivariate drift", section.status, section.message)
    r = section.result
    return (
        f"<h2>Multivariate drift: {_badge(r.drifted)}</h2><p>Domain classifier ROC AUC "
        f"{r.statistic:.4f} (threshold {r.threshold:.4f}, permutation p-value {_n(r.p_value)}; "
        f"{r.n_reference} reference and {r.n_current} current rows).</p>"
    )


def _predictions(report: DriftReport) -> str:
    section = report.predictions
    if section.result is None:
        return _unavailable("Prediction drift", section.status, section.message)
    return f"<h2>Prediction drift: {_badge(section.drifted)}</h2>" + _summary_table(
        section.result.features
    )


def render_concept(section: ConceptSection) -> str:
    """The concept drift section: detectors, realised and estimated performance."""
    head = (
        f"<h2>Concept drift: {_badge(section.drifted)}</h2><p>{section.labelled_rows:,} of "
        f"{section.rows:,} records labelled ({section.labelled_share:.0%}); task "
        f"{_e(section.task or '-')}, status <b>{_e(section.status)}</b>"
        + (f". {_e(section.message)}" if section.message else "")
        + "</p>"
    )
    parts = [head]
    performance = section.performance
    if performance is not None:
        verdict = "degraded" if performance.degraded else "not degraded"
        reference = (
            "no reference performance"
            if performance.reference is None
            else f"reference {_n(performance.reference)}, difference "
            f"{_n(performance.difference)}, {verdict}"
        )
        parts.append(
            f"<p>Realised {_e(performance.metric)} {_n(performance.value)} "
            f"({performance.confidence:.0%} interval {_n(performance.low)} to "
            f"{_n(performance.high)}, {performance.n:,} labelled rows); {reference}.</p>"
        )
    estimate = section.estimate
    if estimate is not None:
        if estimate.value is None:
            parts.append(
                f"<p class='muted'>CBPE estimate: {_e(estimate.status)}: {_e(estimate.message)}</p>"
            )
        else:
            parts.append(
                f"<p>CBPE estimated accuracy {_n(estimate.value)} (interval {_n(estimate.low)} "
                f"to {_n(estimate.high)}, {estimate.n:,} predictions); calibration error "
                f"{_n(estimate.calibration_error)} on {estimate.calibration_rows:,} labelled "
                f"predictions, {'reliable' if estimate.reliable else 'NOT reliable'}.</p>"
            )
    rows = [
        "<table><tr><th>detector</th><th>status</th><th>detected</th><th>detections</th>"
        "<th>first detection (row)</th><th>first detection (time)</th><th>note</th></tr>"
    ]
    for d in section.detectors:
        when = "" if d.first_time is None else d.first_time.isoformat()
        rows.append(
            f"<tr class='{'drifted' if d.detected else ''}'><td>{_e(d.name)}</td>"
            f"<td>{_e(d.status)}</td><td>{'yes' if d.detected else 'no'}</td>"
            f"<td>{len(d.detections)}</td><td>{'' if d.first_index is None else d.first_index}</td>"
            f"<td>{_e(when)}</td><td class='muted'>{_e(d.message)}</td></tr>"
        )
    rows.append("</table>")
    return "".join(parts) + "".join(rows)


def _feature_block(feature: FeatureDrift, go: Any) -> str:
    header = (
        f"<div class='feature' id='f-{_e(feature.name)}'><h3>{_e(feature.name)} "
        f"{_badge(feature.drifted)}</h3><p>status <b>{_e(feature.status.value)}</b>"
    )
    if feature.test is not None:
        header += (
            f"; test <b>{_e(feature.test)}</b>: statistic {_n(feature.statistic)}, p-value "
            f"{_n(feature.p_value)} (q {_n(feature.q_value)}), effect size "
            f"{_n(feature.effect_size)} against threshold {_n(feature.threshold)} (minimum "
            f"{_n(feature.min_effect)}, null band {_n(feature.null_band)})"
        )
    if feature.message:
        header += f". {_e(feature.message)}"
    header += "</p>"
    dist = feature.distribution
    if dist is None:
        return header + "</div>"
    figure = go.Figure()
    if dist.edges is not None:
        widths = [max(b - a, 1e-12) for a, b in zip(dist.edges[:-1], dist.edges[1:], strict=True)]
        xs = [(a + b) / 2 for a, b in zip(dist.edges[:-1], dist.edges[1:], strict=True)]
        for name, shares in (("reference", dist.reference), ("current", dist.current)):
            figure.add_trace(
                go.Bar(
                    x=xs,
                    y=[s / w for s, w in zip(shares, widths, strict=True)],
                    width=widths,
                    name=name,
                    opacity=0.55,
                    hovertext=list(dist.labels),
                )
            )
        figure.update_layout(barmode="overlay", yaxis_title="density", xaxis_title=feature.name)
    else:
        for name, shares in (("reference", dist.reference), ("current", dist.current)):
            figure.add_trace(go.Bar(x=list(dist.labels), y=list(shares), name=name))
        figure.update_layout(barmode="group", yaxis_title="share", xaxis_title=feature.name)
    figure.update_layout(height=320, margin={"l": 50, "r": 20, "t": 20, "b": 40})
    plot = str(figure.to_html(full_html=False, include_plotlyjs=False))
    return header + plot + "</div>"


def _unavailable(title: str, status: str, message: str) -> str:
    return f"<h2>{title}</h2><p class='muted'>{_e(status)}: {_e(message)}</p>"


def _badge(drifted: bool) -> str:
    return (
        "<span class='badge yes'>drift</span>"
        if drifted
        else "<span class='badge no'>no drift</span>"
    )


def _n(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
