"""Reading a window's predictions joined with their feedback labels from the prediction log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ferryman.drift.traffic import WindowInfo

if TYPE_CHECKING:
    from ferryman.capture import LogStore


def read_labelled(store: LogStore, info: WindowInfo, *, limit: int) -> pa.Table:
    """The window's primary predictions with a feedback label, oldest first."""
    from ferryman.capture.query import filters

    spec = info.window
    since = info.since if spec.span is not None else None
    where, parameters = filters(
        version=spec.version, role="primary", status=200, since=since, until=info.until
    )
    source = f"SELECT * FROM predictions{where}"
    if spec.rows is not None:
        source += f' ORDER BY time DESC, request_id DESC, "row" DESC LIMIT {int(spec.rows)}'
    table = store.reader.arrow(
        "SELECT w.time, w.request_id, w.prediction, w.probabilities, f.label "
        f"FROM ({source}) AS w JOIN feedback AS f "
        'ON f.request_id = w.request_id AND f."row" = w."row" '
        "WHERE f.label IS NOT NULL AND w.prediction IS NOT NULL "
        f'ORDER BY w.time DESC, w.request_id DESC, w."row" DESC LIMIT {int(limit)}',
        parameters,
        endpoints=[info.endpoint],
    )
    return table.take(pa.array(range(table.num_rows - 1, -1, -1), pa.int64()))


def read_calibration(
    store: LogStore, info: WindowInfo, classes: list[str], limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """The latest labelled predictions with probabilities up to the window's end: their
    ``(n, k)`` probabilities (columns in ``classes`` order) and label indices (-1: a
    label that is no class)."""
    from ferryman.capture.query import filters

    where, parameters = filters(
        version=info.window.version, role="primary", status=200, until=info.until, prefix="p."
    )
    if info.window.version is None and info.versions:
        where += " AND p.model_version IN (SELECT unnest(?::VARCHAR[]))"
        parameters.append(list(info.versions))
    table = store.reader.arrow(
        "SELECT p.probabilities, f.label FROM predictions AS p JOIN feedback AS f "
        f'ON f.request_id = p.request_id AND f."row" = p."row"{where} '
        "AND p.probabilities IS NOT NULL AND f.label IS NOT NULL "
        f'ORDER BY p.time DESC, p.request_id DESC, p."row" DESC LIMIT {int(limit)}',
        parameters,
        endpoints=[info.endpoint],
    )
    position = {name.lower(): index for index, name in enumerate(classes)}
    rows = [dict(value) for value in table.column("probabilities").to_pylist()]
    matrix = np.array(
        [[float(row.get(name) or 0.0) for name in classes] for row in rows], dtype=np.float64
    ).reshape(len(rows), len(classes))
    labels = np.array(
        [position.get(str(label).lower(), -1) for label in table.column("label").to_pylist()],
        dtype=np.int64,
    )
    return matrix, labels
