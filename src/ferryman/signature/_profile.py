"""Reference profiles: compact training statistics that drift detection compares against.

A profile stores, per feature, either a numeric summary (quantiles and a histogram over
quantile bins) or category frequencies; the same for the training targets and the
model's training predictions. Its size depends on the number of columns, classes and
quantile levels, never on the number of rows, and it holds no raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ferryman.errors import InvalidInputError, NotFoundError
from ferryman.flavors.base import Prediction
from ferryman.signature._dtypes import ColumnDType, column_dtype_of, series_from_arrow
from ferryman.signature._inference import canonical_column, check_lengths, training_columns
from ferryman.signature._serialization import model_from_dict
from ferryman.signature._specs import CategoryValue, ColumnSpec

#: Categorical profiles keep the counts of at most this many most frequent values.
MAX_PROFILE_CATEGORIES = 1000

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Histogram(BaseModel):
    """Counts of reference values in bins cut at the reference quantiles.

    Bin 0 holds values ``x <= cut_points[0]``, bin ``i`` holds
    ``cut_points[i-1] < x <= cut_points[i]``, and the last bin holds
    ``x > cut_points[-1]``, so the outer bins are open-ended and any new value falls
    in some bin. The cut points are the distinct interior quantiles of the reference
    (levels strictly between 0 and 1): for 101 levels, up to 100 bins of about 1 % of
    the reference each. Coarser bins (deciles for PSI) are sums of neighbouring bins.

    Attributes:
        cut_points: Strictly increasing bin boundaries.
        counts: Reference counts per bin, ``len(cut_points) + 1`` of them.
    """

    model_config = _MODEL_CONFIG

    cut_points: tuple[float, ...]
    counts: tuple[int, ...]

    @model_validator(mode="after")
    def _check_bins(self) -> Self:
        if len(self.counts) != len(self.cut_points) + 1:
            raise ValueError(
                f"a histogram with {len(self.cut_points)} cut points needs "
                f"{len(self.cut_points) + 1} counts, got {len(self.counts)}"
            )
        if any(b <= a for a, b in zip(self.cut_points, self.cut_points[1:], strict=False)):
            raise ValueError("cut_points must be strictly increasing")
        return self

    def bin_counts(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Count new values in this histogram's bins; NaN values are left out.

        Args:
            values: Numbers (for datetime features: seconds since the Unix epoch).

        Returns:
            One count per bin, aligned with :attr:`counts`.
        """
        array = np.asarray(values, dtype=np.float64).reshape(-1)
        array = array[~np.isnan(array)]
        bins = np.searchsorted(np.asarray(self.cut_points), array, side="left")
        return np.bincount(bins, minlength=len(self.counts)).astype(np.int64)


class NumericProfile(BaseModel):
    """Summary of a numeric column (int64, float64, or datetime as epoch seconds).

    Attributes:
        kind: Always ``"numeric"``.
        name: The column name.
        dtype: The signature type of the column.
        count: Number of rows, missing ones included.
        missing: Number of missing values (None, NaN, NA, NaT).
        infinite: Number of +inf and -inf values.
        minimum: Smallest finite value, ``None`` when there is none.
        maximum: Largest finite value.
        mean: Mean of the finite values.
        std: Population standard deviation (ddof=0) of the finite values.
        quantiles: Quantiles of the finite values at the profile's ``quantile_levels``
            (NumPy's default linear method); empty when there is no finite value.
        histogram: Counts of the finite values per quantile bin, or ``None``.
    """

    model_config = _MODEL_CONFIG

    kind: Literal["numeric"] = "numeric"
    name: str
    dtype: ColumnDType
    count: int = Field(ge=0)
    missing: int = Field(ge=0)
    infinite: int = Field(ge=0)
    minimum: float | None
    maximum: float | None
    mean: float | None
    std: float | None
    quantiles: tuple[float, ...]
    histogram: Histogram | None


class CategoricalProfile(BaseModel):
    """Frequencies of the values of a string, category or bool column (or of labels).

    Attributes:
        kind: Always ``"categorical"``.
        name: The column name.
        dtype: The signature type of the column.
        count: Number of rows, missing ones included.
        missing: Number of missing values.
        distinct: Number of distinct non-missing values.
        categories: The most frequent values, most frequent first (ties in order of
            first appearance), at most :data:`MAX_PROFILE_CATEGORIES`.
        frequencies: The count of each value in ``categories``.
        other: Number of non-missing values outside ``categories``.
    """

    model_config = _MODEL_CONFIG

    kind: Literal["categorical"] = "categorical"
    name: str
    dtype: ColumnDType
    count: int = Field(ge=0)
    missing: int = Field(ge=0)
    distinct: int = Field(ge=0)
    categories: tuple[CategoryValue, ...]
    frequencies: tuple[int, ...]
    other: int = Field(ge=0)

    @model_validator(mode="after")
    def _check_lengths(self) -> Self:
        if len(self.categories) != len(self.frequencies):
            raise ValueError("categories and frequencies must have the same length")
        return self


#: The profile of one column: numeric or categorical, told apart by ``kind``.
ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class ReferenceProfile(BaseModel):
    """Training statistics of a model version, the baseline for drift detection.

    Example of :meth:`to_dict` (lists shortened)::

        {"format_version": 1, "row_count": 1000,
         "quantile_levels": [0.0, 0.01, ..., 1.0],
         "features": [
           {"kind": "numeric", "name": "age", "dtype": "int64", "count": 1000,
            "missing": 0, "infinite": 0, "minimum": 18.0, "maximum": 90.0,
            "mean": 41.3, "std": 12.9, "quantiles": [18.0, 19.0, ..., 90.0],
            "histogram": {"cut_points": [19.0, 21.0, ...], "counts": [12, 9, ...]}},
           {"kind": "categorical", "name": "city", "dtype": "string", "count": 1000,
            "missing": 3, "distinct": 2, "categories": ["Oslo", "Bergen"],
            "frequencies": [700, 297], "other": 0}],
         "target": [...], "predictions": [...]}

    Attributes:
        format_version: Version of this JSON layout; 1.
        row_count: Number of training rows profiled.
        quantile_levels: Probabilities in [0, 1] at which numeric quantiles are kept.
        features: One profile per input column, in signature order.
        target: The profile of ``y``: one entry named ``"target"``, or
            ``"target[0]"``, ``"target[1]"``, ... for several outputs; empty without y.
        predictions: The profile of the training predictions: ``"prediction"`` (or
            ``"prediction[i]"``), categorical for labels and numeric for values, plus
            one numeric ``"probability[<class>]"`` entry per class when the model gives
            probabilities; empty without predictions.
    """

    model_config = _MODEL_CONFIG

    format_version: Literal[1] = 1
    row_count: int = Field(ge=1)
    quantile_levels: tuple[float, ...]
    features: tuple[ColumnProfile, ...]
    target: tuple[ColumnProfile, ...] = ()
    predictions: tuple[ColumnProfile, ...] = ()

    @model_validator(mode="after")
    def _check_quantiles(self) -> Self:
        levels = self.quantile_levels
        if len(levels) < 2 or levels[0] != 0.0 or levels[-1] != 1.0:
            raise ValueError("quantile_levels must run from 0.0 to 1.0 with at least 2 levels")
        for profile in (*self.features, *self.target, *self.predictions):
            if isinstance(profile, NumericProfile) and len(profile.quantiles) not in (
                0,
                len(levels),
            ):
                raise ValueError(
                    f"profile {profile.name!r} has {len(profile.quantiles)} quantiles for "
                    f"{len(levels)} levels"
                )
        return self

    def get_feature(self, name: str) -> NumericProfile | CategoricalProfile:
        """Return the profile of the input column ``name``.

        Raises:
            NotFoundError: No feature has that name; the message lists the names.
        """
        for profile in self.features:
            if profile.name == name:
                return profile
        names = ", ".join(profile.name for profile in self.features)
        raise NotFoundError(f"No feature {name!r} in the reference profile. Features: {names}.")

    def to_dict(self) -> dict[str, object]:
        """Return the profile as a JSON-safe dict (only str, int, float, bool, None)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict` output.

        Raises:
            InvalidInputError: ``data`` is malformed; the message names the field.
        """
        return model_from_dict(cls, data, what="reference profile")


def build_profile(
    X: pd.DataFrame | pa.Table | np.ndarray,
    *,
    predictions: Prediction | None = None,
    y: pd.Series | pd.DataFrame | np.ndarray | Sequence[object] | None = None,
    quantiles: int = 101,
) -> ReferenceProfile:
    """Profile training features, targets and predictions for drift detection.

    Numeric columns (int64, float64, and datetimes as seconds since the Unix epoch)
    get count, missing, infinite, min, max, mean, std, ``quantiles`` evenly spaced
    quantiles and a histogram over the quantile bins; bool, string and category columns
    get the frequencies of their :data:`MAX_PROFILE_CATEGORIES` most frequent values.
    Predictions are profiled as labels (frequencies) when the model is a classifier,
    as values otherwise; probabilities get one numeric profile per class.

    Args:
        X: Training features, as for :func:`infer_signature`.
        predictions: The model's predictions on ``X``.
        y: Training targets, one per row of ``X``.
        quantiles: Number of evenly spaced quantile levels from 0 to 1 inclusive
            (101 gives percentiles).

    Returns:
        The profile.

    Raises:
        SignatureInferenceError: ``X`` cannot be read (see :func:`infer_signature`).
        InvalidInputError: ``quantiles`` is below 2, or ``y`` or ``predictions`` does
            not have one entry per row of ``X``.

    Example:
        >>> import pandas as pd
        >>> profile = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), quantiles=5)
        >>> profile.get_feature("x").quantiles
        (1.0, 1.75, 2.5, 3.25, 4.0)
    """
    if isinstance(quantiles, bool) or not isinstance(quantiles, int) or quantiles < 2:
        raise InvalidInputError(f"quantiles must be an integer >= 2, got {quantiles!r}.")
    levels = np.round(np.linspace(0.0, 1.0, quantiles), 12)
    columns, _ = training_columns(X)
    rows = len(columns[0][1])
    check_lengths(rows, y=y, predictions=predictions)
    features = tuple(_profile_feature(name, series, levels) for name, series in columns)
    return ReferenceProfile(
        row_count=rows,
        quantile_levels=tuple(float(level) for level in levels),
        features=features,
        target=() if y is None else _profile_target(y, levels),
        predictions=() if predictions is None else _profile_predictions(predictions, levels),
    )


def _profile_feature(
    name: str, series: pd.Series, levels: np.ndarray
) -> NumericProfile | CategoricalProfile:
    dtype, timezone = column_dtype_of(series, column=name)
    spec = ColumnSpec(name=name, dtype=dtype, nullable=True, timezone=timezone)
    canonical = canonical_column(spec, series)
    if dtype in ("int64", "float64"):
        return numeric_profile(name, dtype, canonical.to_numpy(np.float64, na_value=np.nan), levels)
    if dtype == "datetime":
        return numeric_profile(name, dtype, _epoch_seconds(canonical), levels)
    return categorical_profile(name, dtype, canonical)


def _epoch_seconds(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy()
    micros = series.astype("int64").to_numpy().astype(np.float64)
    micros[missing] = np.nan
    return micros / 1e6


def numeric_profile(
    name: str, dtype: ColumnDType, values: np.ndarray, levels: np.ndarray
) -> NumericProfile:
    """Summarise float values (NaN = missing) at the given quantile levels."""
    nan = np.isnan(values)
    infinite = np.isinf(values)
    finite = values[~(nan | infinite)] if nan.any() or infinite.any() else values
    if len(finite) == 0:
        return NumericProfile(
            name=name,
            dtype=dtype,
            count=len(values),
            missing=int(nan.sum()),
            infinite=int(infinite.sum()),
            minimum=None,
            maximum=None,
            mean=None,
            std=None,
            quantiles=(),
            histogram=None,
        )
    ordered = np.sort(finite)
    quantile_values = _sorted_quantiles(ordered, levels)
    cut_points = np.unique(quantile_values[1:-1])
    below = np.searchsorted(ordered, cut_points, side="right")
    counts = np.diff(np.concatenate(([0], below, [len(ordered)])))
    return NumericProfile(
        name=name,
        dtype=dtype,
        count=len(values),
        missing=int(nan.sum()),
        infinite=int(infinite.sum()),
        minimum=float(ordered[0]),
        maximum=float(ordered[-1]),
        mean=_finite_or_none(np.mean(ordered)),
        std=_finite_or_none(np.std(ordered)),
        quantiles=tuple(quantile_values.tolist()),
        histogram=Histogram(cut_points=tuple(cut_points.tolist()), counts=tuple(counts.tolist())),
    )


def _sorted_quantiles(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of sorted data, equal to ``np.quantile(ordered, levels)`` (linear)."""
    position = levels * (len(ordered) - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = position - below
    low, high = ordered[below], ordered[above]
    # NumPy's _lerp: interpolate from the nearer end, so results are exact at both ends.
    difference = high - low
    interpolated = np.where(
        weight >= 0.5, high - difference * (1 - weight), low + difference * weight
    )
    return np.asarray(interpolated, dtype=np.float64)


def _finite_or_none(value: np.floating) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def categorical_profile(name: str, dtype: ColumnDType, series: pd.Series) -> CategoricalProfile:
    """Count the values of a column; keep the most frequent ones."""
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]
    order = np.argsort(-counts.to_numpy(), kind="stable")
    top = order[:MAX_PROFILE_CATEGORIES]
    frequencies = counts.to_numpy()[top]
    present = int(counts.sum())
    return CategoricalProfile(
        name=name,
        dtype=dtype,
        count=len(series),
        missing=int(series.isna().sum()),
        distinct=len(counts),
        categories=tuple(_plain(value) for value in counts.index[top].tolist()),
        frequencies=tuple(int(value) for value in frequencies),
        other=present - int(frequencies.sum()),
    )


def _plain(value: object) -> CategoryValue:
    plain = value.item() if isinstance(value, np.generic) else value
    if isinstance(plain, bool | int | float | str):
        return plain
    return str(plain)


def _output_columns(values: object, name: str) -> list[tuple[str, pd.Series]]:
    """Split 1-D or 2-D outputs into named Series."""
    if isinstance(values, pd.DataFrame):
        array = values.to_numpy()
    elif isinstance(values, pd.Series):
        return [(name, values.reset_index(drop=True))]
    elif isinstance(values, pa.Array | pa.ChunkedArray):
        return [(name, series_from_arrow(values))]
    else:
        array = np.asarray(values)
    if array.ndim == 1:
        return [(name, pd.Series(array))]
    return [(f"{name}[{i}]", pd.Series(array[:, i])) for i in range(array.shape[1])]


def _profile_outputs(
    columns: list[tuple[str, pd.Series]], levels: np.ndarray, *, as_labels: bool | None
) -> list[NumericProfile | CategoricalProfile]:
    profiles: list[NumericProfile | CategoricalProfile] = []
    for name, series in columns:
        dtype, timezone = column_dtype_of(series, column=name)
        labels = dtype != "float64" if as_labels is None else as_labels
        if labels:
            spec = ColumnSpec(name=name, dtype=dtype, nullable=True, timezone=timezone)
            profiles.append(categorical_profile(name, dtype, canonical_column(spec, series)))
        else:
            values = pd.to_numeric(series).to_numpy(np.float64, na_value=np.nan)
            profiles.append(numeric_profile(name, dtype, values, levels))
    return profiles


def _profile_target(
    y: object, levels: np.ndarray
) -> tuple[NumericProfile | CategoricalProfile, ...]:
    return tuple(_profile_outputs(_output_columns(y, "target"), levels, as_labels=None))


def _profile_predictions(
    predictions: Prediction, levels: np.ndarray
) -> tuple[NumericProfile | CategoricalProfile, ...]:
    classifier = predictions.probabilities is not None or predictions.classes is not None
    profiles = _profile_outputs(
        _output_columns(predictions.predictions, "prediction"),
        levels,
        as_labels=True if classifier else None,
    )
    probabilities = predictions.probabilities
    if probabilities is not None:
        classes = predictions.classes or list(range(probabilities.shape[1]))
        for position, label in enumerate(classes):
            values = np.asarray(probabilities[:, position], dtype=np.float64)
            profiles.append(
                numeric_profile(f"probability[{_plain(label)}]", "float64", values, levels)
            )
    return tuple(profiles)
