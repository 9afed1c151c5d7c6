"""The condition language of gates and alerts: canonical text, values, and every error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferryman.errors import InvalidExpressionError, UnknownMetricError
from ferryman.monitoring._expressions import (
    COMPARISONS,
    MAX_CONDITION_LENGTH,
    BinaryOp,
    Condition,
    Expression,
    Negate,
    Number,
    Stable,
    format_duration,
    parse_condition,
    parse_duration,
)
from ferryman.monitoring.base import METRIC_CATALOGUE


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("error_rate < 0.01", "error_rate < 0.01"),
        ("p99_latency_ms<1.2*stable", "p99_latency_ms < 1.2 * stable"),
        ("null_rate < 0.001", "null_rate < 0.001"),
        ("prediction_psi < 0.2", "prediction_psi < 0.2"),
        ("agreement > 0.98", "agreement > 0.98"),
        ('missing_rate{feature="age"} > 0.2', 'missing_rate{feature="age"} > 0.2'),
        (
            "missing_rate{ feature = 'age' }".replace("'", '"') + " > .2",
            'missing_rate{feature="age"} > 0.2',
        ),
        ('missing_rate{feature="age",} > 0.2', 'missing_rate{feature="age"} > 0.2'),
        ("p99_latency_ms > 200 for 2m", "p99_latency_ms > 200 for 2m"),
        ("p99_latency_ms > 200.0 for 120s", "p99_latency_ms > 200 for 2m"),
        ("null_rate > 0.01 for 90m", "null_rate > 0.01 for 1h30m"),
        ("mean_prediction <= stable + 0.05", "mean_prediction <= stable + 0.05"),
        ("mean_prediction >= (stable - 0.05)", "mean_prediction >= stable - 0.05"),
        ("mean_prediction != 1 - (2 - 3)", "mean_prediction != 1 - (2 - 3)"),
        ("mean_prediction == (1 + 2) * 3", "mean_prediction == (1 + 2) * 3"),
        ("mean_prediction > -(stable + 1) / 2", "mean_prediction > -(stable + 1) / 2"),
        ("mean_prediction > 2 * -1", "mean_prediction > 2 * -1"),
        ("error_rate < 1e-3", "error_rate < 0.001"),
        ("error_rate < 1E-5", "error_rate < 1e-05"),
        (
            'class_share{class="a \\"b\\" \\\\ c"} > 0.5',
            'class_share{class="a \\"b\\" \\\\ c"} > 0.5',
        ),
        ("error_rate < 0.01 for 1d2h3m4s", "error_rate < 0.01 for 1d2h3m4s"),
    ],
    ids=lambda value: value,
)
def test_conditions_print_in_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_condition(text)) == canonical


def test_a_parsed_condition_exposes_its_parts() -> None:
    cond = parse_condition('missing_rate{feature="age"} >= 0.1 * 2 for 5m')

    assert cond == Condition(
        metric="missing_rate",
        labels=(("feature", "age"),),
        op=">=",
        right=BinaryOp("*", Number(0.1), Number(2.0)),
        duration=timedelta(minutes=5),
    )
    assert cond.label_map == {"feature": "age"}
    assert cond.metric_text == 'missing_rate{feature="age"}'


@pytest.mark.parametrize(
    ("text", "stable", "threshold"),
    [
        ("p99_latency_ms < 1.2 * stable", 100.0, 120.0),
        ("mean_prediction <= stable + 0.05", 0.5, 0.55),
        ("mean_prediction > 1 - 2 - 3", None, -4.0),
        ("mean_prediction > 1 - (2 - 3)", None, 2.0),
        ("mean_prediction > 2 + 3 * 4", None, 14.0),
        ("mean_prediction > (2 + 3) * 4", None, 20.0),
        ("mean_prediction > 8 / 4 / 2", None, 1.0),
        ("mean_prediction > --stable", 3.0, 3.0),
    ],
    ids=lambda value: str(value),
)
def test_the_right_side_evaluates_with_usual_precedence(
    text: str, stable: float | None, threshold: float
) -> None:
    assert parse_condition(text).threshold(stable=stable) == pytest.approx(threshold)


@pytest.mark.parametrize(
    ("op", "observed", "expected"),
    [
        ("<", 1.0, False),
        ("<=", 1.0, True),
        (">", 1.0, False),
        (">=", 1.0, True),
        ("==", 1.0, True),
        ("!=", 1.0, False),
        ("<", 0.5, True),
        (">", 1.5, True),
        ("!=", 1.5, True),
    ],
)
def test_each_comparison_holds_as_written(op: str, observed: float, expected: bool) -> None:
    assert parse_condition(f"error_rate {op} 1").holds(observed, 1.0) is expected


def test_uses_stable_looks_inside_the_whole_right_side() -> None:
    assert parse_condition("p99_latency_ms < 10 + -(2 * stable)").uses_stable
    assert not parse_condition("p99_latency_ms < 10 + -(2 * 3)").uses_stable


def test_a_threshold_without_stable_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="uses 'stable' but no stable value was given"):
        parse_condition("p99_latency_ms < 1.2 * stable").threshold()


def test_division_by_zero_is_an_error_not_infinity() -> None:
    with pytest.raises(ValueError, match=r"division by zero in 1 / stable"):
        parse_condition("p99_latency_ms < 1 / stable").threshold(stable=0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "error_rate 0.01",
            r"Invalid condition 'error_rate 0.01': expected a comparison operator "
            r"\(<, <=, >, >=, ==, !=\) after 'error_rate' at column 12, found '0.01'\.",
        ),
        (
            "error_rate = 0.01",
            r"expected a comparison operator \(<, <=, >, >=, ==, !=\) after 'error_rate' "
            r"at column 12, found '='\.",
        ),
        (
            'missing_rate{feature="age"} 3',
            r"after 'missing_rate\{feature=\"age\"\}' at column 29, found '3'",
        ),
        ("", r"expected a metric name such as error_rate at column 1, found the end"),
        ("  < 1", r"expected a metric name such as error_rate at column 3, found '<'"),
        ("error_rate <", r"expected a number, 'stable' or '\(' at column 13, found the end"),
        (
            "error_rate < baseline",
            r"expected a number, 'stable' or '\(' at column 14, found 'baseline'",
        ),
        (
            "error_rate < 5m",
            r"'5m' at column 14 is not a number; expected e\.g\. 0\.01, 200 or 1e-3",
        ),
        ("error_rate < 1.2.3", r"'1\.2\.3' at column 14 is not a number"),
        ("error_rate < 1e999", r"the number '1e999' at column 14 is too large"),
        (
            "error_rate < (1",
            r"expected '\)' \(to close the '\(' at column 14\) at column 16, found the end",
        ),
        ("error_rate < 1 +", r"expected a number, 'stable' or '\(' at column 17, found the end"),
        (
            "error_rate < 0.1 foo",
            r"expected an operator \(\+, -, \*, /\), 'for DURATION' or the end of the condition "
            r"at column 18, found 'foo'",
        ),
        ("error_rate < 0.1)", r"or the end of the condition at column 17, found '\)'"),
        (
            "error_rate < 0.1 for",
            r"expected a duration such as 30s, 5m, 1h or 1h30m after 'for' at column 21, "
            r"found the end of the condition",
        ),
        (
            "error_rate < 0.1 for 5x",
            r"'5x' at column 22 is not a duration; expected a duration such as 30s, 5m, 1h or "
            r"1h30m \(whole numbers of d, h, m and s, largest unit first\)",
        ),
        ("error_rate < 0.1 for 1m1h", r"'1m1h' at column 22 is not a duration"),
        ("error_rate < 0.1 for 1.5m", r"'1\.5m' at column 22 is not a duration"),
        ("error_rate < 0.1 for 0s", r"'0s' at column 22 is zero; a duration must be longer"),
        (
            "error_rate < 0.1 for 1h 30m",
            r"expected the end of the condition at column 25, found '30m'",
        ),
        (
            "missing_rate{feature=age} > 0.2",
            r'expected a quoted value after feature=, e\.g\. feature="age" at column 22, '
            r"found 'age'",
        ),
        ('missing_rate{feature="age" > 0.2', r"expected ',' or '\}' after a label at column 28"),
        (
            'missing_rate{feature "age"} > 0.2',
            r"expected '=' after the label name 'feature' at column 22",
        ),
        (
            "missing_rate{1} > 0.2",
            r"expected a label name such as feature, or '\}' at column 14, found '1'",
        ),
        (
            'missing_rate{feature="age} > 0.2',
            r"the value of label 'feature' starting at column 22 has no closing '\"'",
        ),
        ('missing_rate{feature=""} > 0.2', r"label 'feature' has an empty value at column 22"),
        (
            'missing_rate{feature="a", feature="b"} > 0.2',
            r"label 'feature' is given twice \(second time at column 27\)",
        ),
        (
            "error_rate < " + "(" * 40 + "1" + ")" * 40,
            r"parentheses or minus signs are nested more than 32 deep at column 46",
        ),
        (
            "error_rate < " + "1 + " * 200 + "1",
            rf"it is 814 characters long; conditions are at most {MAX_CONDITION_LENGTH}",
        ),
    ],
    ids=lambda value: value[:40],
)
def test_syntax_errors_name_the_column_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(InvalidExpressionError, match=message):
        parse_condition(text)


def test_a_syntax_error_carries_its_column() -> None:
    with pytest.raises(InvalidExpressionError) as info:
        parse_condition("error_rate 0.01")

    assert (info.value.column, info.value.expression) == (12, "error_rate 0.01")
    assert info.value.code == "invalid_expression"


def test_an_unknown_metric_lists_the_catalogue() -> None:
    catalogue = ", ".join(sorted(METRIC_CATALOGUE))

    with pytest.raises(UnknownMetricError) as info:
        parse_condition("eror_rate < 0.01")

    assert str(info.value) == (
        "Invalid condition 'eror_rate < 0.01': unknown metric 'eror_rate' at column 1. "
        f"Available: {catalogue}."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "missing_rate > 0.2",
            r"metric 'missing_rate' needs the label\(s\) feature, "
            r'e\.g\. missing_rate\{feature="\.\.\."\}',
        ),
        (
            'error_rate{feature="age"} > 0.2',
            r"metric 'error_rate' does not take the label\(s\) feature; it takes no labels",
        ),
        (
            'missing_rate{feature="age", class="x"} > 0.2',
            r"metric 'missing_rate' does not take the label\(s\) class; it takes feature",
        ),
    ],
)
def test_labels_must_be_the_ones_the_metric_takes(text: str, message: str) -> None:
    with pytest.raises(UnknownMetricError, match=message):
        parse_condition(text)


def test_a_custom_catalogue_replaces_the_default() -> None:
    cond = parse_condition("auc > 0.8", catalogue={"auc": ()})

    assert str(cond) == "auc > 0.8"
    with pytest.raises(UnknownMetricError, match="Available: auc"):
        parse_condition("error_rate < 0.1", catalogue={"auc": ()})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2d", 172_800), (" 90s ", 90)],
)
def test_durations_parse_to_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", r"Invalid duration '5': expected a duration such as 30s, 5m, 1h or 1h30m"),
        ("", r"Invalid duration '': expected a duration"),
        ("30m1h", r"Invalid duration '30m1h': expected"),
        ("0m", r"Invalid duration '0m': a duration must be longer than zero"),
        ("366d", r"Invalid duration '366d': expected at most 365d"),
        ("99999999999999999999d", r"expected at most 365d"),
    ],
)
def test_bad_durations_are_rejected(text: str, message: str) -> None:
    with pytest.raises(InvalidExpressionError, match=message):
        parse_duration(text)


def test_format_duration_rejects_fractions_of_a_second() -> None:
    with pytest.raises(ValueError, match="whole positive seconds"):
        format_duration(timedelta(seconds=1.5))


# -- round trip ---------------------------------------------------------------------------

_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(float),
    st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False),
).map(Number)
_expressions: st.SearchStrategy[Expression] = st.recursive(
    st.one_of(_numbers, st.just(Stable())),
    lambda inner: st.one_of(
        inner.map(Negate),
        st.builds(BinaryOp, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
    ),
    max_leaves=8,
)
# Characters that matter to the syntax (quotes, escapes, braces, commas, spaces) and a few
# beyond ASCII; a fixed alphabet keeps generation fast.
_label_values = st.text(alphabet='ab_ 0"\\{},=<é漢\t', min_size=1, max_size=12)


@st.composite
def _conditions(draw: st.DrawFn) -> Condition:
    metric = draw(st.sampled_from(sorted(METRIC_CATALOGUE)))
    labels = tuple((name, draw(_label_values)) for name in METRIC_CATALOGUE[metric].labels)
    duration = draw(
        st.none() | st.integers(min_value=1, max_value=10**7).map(lambda s: timedelta(seconds=s))
    )
    return Condition(
        metric=metric,
        labels=labels,
        op=draw(st.sampled_from(COMPARISONS)),
        right=draw(_expressions),
        duration=duration,
    )


@given(_conditions())
def test_parsing_the_canonical_text_gives_back_the_condition(cond: Condition) -> None:
    assert parse_condition(str(cond)) == cond


@given(_conditions())
def test_canonical_text_is_a_fixed_point(cond: Condition) -> None:
    text = str(cond)

    assert str(parse_condition(text)) == text


@given(st.text(alphabet='error_at{}="<>=!+-*/(). 0123456789esfmhd\\', max_size=40))
def test_any_text_parses_or_raises_a_clear_input_error(text: str) -> None:
    try:
        cond = parse_condition(text)
    except (InvalidExpressionError, UnknownMetricError) as exc:
        assert str(exc).startswith("Invalid condition")
    else:
        assert parse_condition(str(cond)) == cond
