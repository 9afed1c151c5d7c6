"""Concept drift with labels: realised performance per window, against the reference.

Feedback (true labels) may arrive late and for only some predictions: rows without a
label are left out, and each window reports how many labelled rows it has. Each window
gets the metric and a confidence interval (Wilson's for accuracy, normal for mean
absolute error, and by the delta method for root mean squared error). A window is
*degraded* when the confidence interval of its difference from the reference
performance lies entirely on the worse side of zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ferryman.drift._parameters import check_choice, check_integer, check_number
from ferryman.errors import InvalidInputError

Metric = Literal["accuracy", "mae", "rmse"]
#: Whether a larger value of each metric is better.
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "mae": False, "rmse": False}


@dataclass(frozen=True)
class WindowPerformance:
    """The realised performance in one window.

    Attributes:
        start: The window's first timestamp (or first row position).
        end: The window's last timestamp (or last row position).
        n: Labelled rows in the window.
        labelled_share: Share of the window's rows that have a label, in [0, 1].
        value: The metric, ``None`` below ``min_rows`` labelled rows.
        low: Lower end of its confidence interval.
        high: Upper end of its confidence interval.
        difference: ``value - reference``.
        degraded: Whether the window is significantly worse than the reference.
        status: ``"ok"`` or ``"insufficient-data"``.
    """

    start: object
    end: object
    n: int
    labelled_share: float
    value: float | None
    low: float | None
    high: float | None
    difference: float | None
    degraded: bool
    status: str

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values (timestamps as ISO 8601 strings)."""
        return {
            "start": _plain(self.start),
            "end": _plain(self.end),
            "n": self.n,
            "labelled_share": self.labelled_share,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "difference": self.difference,
            "degraded": self.degraded,
            "status": self.status,
        }


@dataclass(frozen=True)
class PerformanceResult:
    """Performance per window against the reference.

    Attributes:
        metric: The metric's name.
        reference: The reference performance.
        reference_low: Lower end of its confidence interval (equal to it when given
            as a number).
        reference_high: Upper end.
        confidence: The intervals' confidence level.
        windows: One entry per window, in time order.
    """

    metric: str
    reference: float
    reference_low: float
    reference_high: float
    confidence: float
    windows: tuple[WindowPerformance, ...]

    @property
    def degraded(self) -> bool:
        """Whether any window is significantly worse than the reference."""
        return any(window.degraded for window in self.windows)

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values."""
        return {
            "metric": self.metric,
            "reference": self.reference,
            "reference_low": self.reference_low,
            "reference_high": self.reference_high,
            "confidence": self.confidence,
            "degraded": self.degraded,
            "windows": [window.to_dict() for window in self.windows],
        }


def performance_by_window(
    data: pd.DataFrame,
    *,
    reference: float | pd.DataFrame,
    metric: Metric = "accuracy",
    label: str = "label",
    prediction: str = "prediction",
    timestamp: str | None = "timestamp",
    window: str | int = "1D",
    confidence: float = 0.95,
    min_rows: int = 30,
) -> PerformanceResult:
    """Compute a metric per window with confidence intervals, against the reference.

    Args:
        data: One row per prediction: the prediction, its label (missing until
            feedback arrives) and, for time windows, a timestamp.
        reference: The reference performance: a number (e.g. the version's test
            metric), or a DataFrame of reference predictions and labels, whose
            sampling error then counts too.
        metric: ``"accuracy"`` (labels), ``"mae"`` or ``"rmse"`` (values).
        label: Column of true labels.
        prediction: Column of predictions.
        timestamp: Column of prediction times; ``None`` to window by row order.
        window: A pandas frequency (``"1D"``, ``"6h"``) for time windows, or a number
            of rows per window.
        confidence: Confidence level of the intervals, in (0, 1).
        min_rows: Fewest labelled rows for a window to get a value.

    Returns:
        The per-window performance.

    Raises:
        InvalidInputError: A column is missing, a parameter is invalid, the reference
            has no labelled row, or a time window is asked without a timestamp.

    Example:
        >>> frame = pd.DataFrame({"prediction": [1, 0] * 100, "label": [1, 0] * 50 + [0, 1] * 50})
        >>> result = performance_by_window(frame, reference=0.9, timestamp=None, window=100)
        >>> [w.value for w in result.windows], [w.degraded for w in result.windows]
        ([1.0, 0.0], [False, True])
    """
    check_choice("performance_by_window", "metric", metric, tuple(HIGHER_IS_BETTER))
    level = check_number(
        "performance_by_window",
        "confidence",
        confidence,
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    check_integer("performance_by_window", "min_rows", min_rows, low=1)
    z = float(_normal_quantile((1 + level) / 2))
    ref_value, ref_se = _reference(reference, metric, label, prediction)
    groups = _windows(data, label=label, prediction=prediction, timestamp=timestamp, window=window)
    windows: list[WindowPerformance] = []
    for start, end, rows in groups:
        labelled = rows[rows[label].notna()]
        share = len(labelled) / len(rows) if len(rows) else 0.0
        if len(labelled) < min_rows:
            windows.append(
                WindowPerformance(
                    start,
                    end,
                    len(labelled),
                    share,
                    None,
                    None,
                    None,
                    None,
                    False,
                    "insufficient-data",
                )
            )
            continue
        value, se, (low, high) = _metric(labelled, metric, label, prediction, z)
        difference = value - ref_value
        margin = z * math.sqrt(se**2 + ref_se**2)
        worse = difference + margin < 0 if HIGHER_IS_BETTER[metric] else difference - margin > 0
        windows.append(
            WindowPerformance(
                start, end, len(labelled), share, value, low, high, difference, worse, "ok"
            )
        )
    return PerformanceResult(
        metric=metric,
        reference=ref_value,
        reference_low=ref_value - z * ref_se,
        reference_high=ref_value + z * ref_se,
        confidence=level,
        windows=tuple(windows),
    )


def _reference(
    reference: float | pd.DataFrame, metric: str, label: str, prediction: str
) -> tuple[float, float]:
    if isinstance(reference, pd.DataFrame):
        _require(reference, (label, prediction), "reference")
        labelled = reference[reference[label].notna()]
        if labelled.empty:
            raise InvalidInputError("The reference DataFrame has no labelled row.")
        value, se, _ = _metric(labelled, metric, label, prediction, 1.96)
        return value, se
    return check_number("performance_by_window", "reference", reference), 0.0


def _metric(
    rows: pd.DataFrame, metric: str, label: str, prediction: str, z: float
) -> tuple[float, float, tuple[float, float]]:
    n = len(rows)
    if metric == "accuracy":
        correct = (rows[label].to_numpy() == rows[prediction].to_numpy()).astype(np.float64)
        p = float(correct.mean())
        return p, math.sqrt(p * (1 - p) / n), _wilson(p, n, z)
    errors = pd.to_numeric(rows[prediction]).to_numpy(np.float64) - pd.to_numeric(
        rows[label]
    ).to_numpy(np.float64)
    if metric == "mae":
        absolute = np.abs(errors)
        value = float(absolute.mean())
        se = float(absolute.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        return value, se, (max(0.0, value - z * se), value + z * se)
    squared = errors**2
    mse = float(squared.mean())
    mse_se = float(squared.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    value = math.sqrt(mse)
    se = mse_se / (2 * value) if value > 0 else 0.0
    return value, se, (math.sqrt(max(0.0, mse - z * mse_se)), math.sqrt(mse + z * mse_se))


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _windows(
    data: pd.DataFrame, *, label: str, prediction: str, timestamp: str | None, window: str | int
) -> list[tuple[object, object, pd.DataFrame]]:
    _require(data, (label, prediction) + ((timestamp,) if timestamp else ()), "data")
    if isinstance(window, int) and not isinstance(window, bool):
        check_integer("performance_by_window", "window", window, low=1)
        ordered = data.sort_values(timestamp, kind="stable") if timestamp else data
        result = []
        for start in range(0, len(ordered), window):
            rows = ordered.iloc[start : start + window]
            first, last = (
                (rows[timestamp].iloc[0], rows[timestamp].iloc[-1])
                if timestamp
                else (start, start + len(rows) - 1)
            )
            result.append((first, last, rows))
        return result
    if timestamp is None or not isinstance(window, str):
        raise InvalidInputError(
            "Time windows need a timestamp column; pass timestamp=..., or a number of rows "
            "as window."
        )
    times = pd.to_datetime(data[timestamp])
    try:
        grouped = data.assign(**{timestamp: times}).groupby(pd.Grouper(key=timestamp, freq=window))
    except ValueError as exc:
        raise InvalidInputError(f"Invalid window {window!r}: {exc}") from exc
    windows: list[tuple[object, object, pd.DataFrame]] = []
    for key, rows in grouped:
        if len(rows):
            windows.append((key, rows[timestamp].max(), rows))
    return windows


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"The {what} has no column {', '.join(map(repr, missing))}; columns: "
            f"{', '.join(map(str, frame.columns))}."
        )


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _plain(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
