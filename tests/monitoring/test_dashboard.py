"""deploy/grafana/ferryman.json: valid JSON whose queries use only metrics Ferryman exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ferryman.monitoring import MonitoringRecorder, ServingMetrics
from tests.monitoring._stream import Clock, bind, churn_model, play

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ferryman.json"
_METRIC = re.compile(r"\b((?:ferryman_|process_)[a-zA-Z0-9_]*)\b")
_SELECTOR = re.compile(r"\b((?:ferryman_|process_)[a-zA-Z0-9_]*)\{([^}]*)\}")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(document: dict[str, Any]) -> list[str]:
    found = [target["expr"] for panel in panels(document) for target in panel.get("targets", [])]
    found += [
        variable["query"]["query"]
        for variable in document["templating"]["list"]
        if variable["type"] == "query"
    ]
    return found


def exposed_names() -> set[str]:
    """Every sample name ServingMetrics exposes, in single-process and multiprocess mode."""
    names: set[str] = set()
    for directory in (None, Path("unused-multiprocess-dir")):
        registry = CollectorRegistry()
        ServingMetrics.create(registry, multiprocess_dir=directory)
        for family in registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def observed_labels() -> dict[str, set[str]]:
    """Label names of each sample name after the known stream and a few requests."""
    metrics = ServingMetrics.create(CollectorRegistry())
    clock = Clock()
    recorder = MonitoringRecorder(metrics=metrics.data, clock=clock)
    bind(recorder, churn_model())
    play(recorder, recorder, clock, churn_model())
    recorder.drain()
    series = metrics.endpoint("churn", "native")
    series.record(
        version="churn/1",
        status=500,
        seconds=0.1,
        kind="prediction_error",
        queue_seconds=0.01,
        compute_seconds=0.01,
        batch_rows=1,
    )
    series.in_flight.inc()
    metrics.observe_model_load("churn", "churn/1", 1.0)
    queues = metrics.queues
    queues.count_mirror_drop("churn")
    queues.observe_mirror_batch("churn", 2)
    queues.set_depths(queues.batch_depth, {"churn": 1})
    queues.set_depths(queues.mirror_depth, {"churn": 1})
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def test_the_dashboard_is_valid_json_with_endpoint_and_version_variables() -> None:
    document = dashboard()

    variables = {variable["name"] for variable in document["templating"]["list"]}
    assert {"datasource", "endpoint", "version"} <= variables
    assert document["uid"] == "ferryman-serving"


def test_every_panel_has_a_title_a_unique_id_and_queries() -> None:
    document = dashboard()
    found = list(panels(document))
    graphs = [panel for panel in found if panel["type"] != "row"]

    assert len({panel["id"] for panel in found}) == len(found)
    assert all(panel["title"] for panel in found)
    assert all(panel["targets"] and all(t["expr"] for t in panel["targets"]) for panel in graphs)


def test_every_query_references_only_metrics_servingmetrics_exposes() -> None:
    exposed = exposed_names()

    referenced = {name for expr in expressions(dashboard()) for name in _METRIC.findall(expr)}

    assert referenced
    assert referenced - exposed == set()


def test_every_label_selector_uses_labels_the_metric_has() -> None:
    labels = observed_labels()
    wrong = []
    for expr in expressions(dashboard()):
        for name, selector in _SELECTOR.findall(expr):
            used = {part.split("=")[0].strip() for part in selector.split(",") if part.strip()}
            missing = used - labels.get(name, set())
            if missing:
                wrong.append((name, sorted(missing)))

    assert wrong == []


@pytest.mark.parametrize(
    "title",
    [
        "Request rate by status",
        "Latency quantiles",
        "Errors by kind",
        "Requests in flight",
        "Rows per model call",
        "Queue wait (p50, p99)",
        "Queue depths",
        "Shadow copies dropped",
        "Resident memory",
        "CPU",
        "Open file descriptors",
        "Model load time",
        "Missing rate per feature",
        "Schema violations",
        "Null prediction rate",
        "Predicted classes",
        "Score distribution",
        "Mean prediction",
    ],
)
def test_the_dashboard_shows(title: str) -> None:
    assert title in {panel["title"] for panel in panels(dashboard())}


def test_promtool_parses_every_query(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    grafana_variables = {"$__rate_interval": "5m", "$endpoint": ".*", "$version": ".*"}
    rules = []
    for index, expr in enumerate(expressions(dashboard())):
        if expr.startswith("label_values("):
            expr = expr[len("label_values(") : expr.rindex(",")]
        for variable, value in grafana_variables.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"ferryman:dashboard:query{index}", "expr": expr})
    path = tmp_path / "rules.json"  # YAML is a superset of JSON
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
