"""The diff report: exact figures from hand-built rows and from captured shadow records."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import InvalidInputError
from ferryman.rollout import diff
from ferryman.rollout.diff import DiffReport, compare, shadow_report
from tests.rollout.diff_records import HOUR, T0, Capture, Clock, classified, open_log, regressed
from tests.rollout.diff_records import submit as submit_records


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def capture(tmp_path: Path, clock: Clock) -> Capture:
    return open_log(tmp_path / "logs", clock)


def labels_table(labels: list[str], **columns: list[object]) -> pa.Table:
    return pa.table({"prediction": pa.array(labels, pa.string()), **columns})


# -- compare: hand-built rows ------------------------------------------------------------


def test_compare_counts_label_agreement_and_the_confusion_table_exactly() -> None:
    report = compare(
        labels_table(["yes", "yes", "no", "no"]), labels_table(["yes", "no", "no", "yes"])
    )
    assert (report.kind, report.rows_compared, report.agreement_rate) == ("classification", 4, 0.5)
    assert report.confusion is not None
    assert report.confusion.labels == ("no", "yes")
    assert report.confusion.counts == ((1, 1), (1, 1))


def test_compare_reports_mean_and_max_absolute_difference_of_regressions() -> None:
    report = compare(
        pa.table({"prediction": [1.0, 2.0, 3.0, 4.0], "request_id": ["a", "b", "c", "d"]}),
        pa.table({"prediction": [1.0, 2.5, 2.0, 4.0]}),
    )
    assert report.kind == "regression"
    assert (report.mean_abs_diff, report.max_abs_diff) == (0.375, 1.0)
    assert report.agreement_rate is None
    assert [(d.request_id, d.difference) for d in report.disagreements] == [
        ("c", -1.0),
        ("b", 0.5),
    ]


def test_compare_measures_the_positive_class_probability_of_binary_classifiers() -> None:
    def answers(labels: list[int], positive: list[float]) -> pa.Table:
        keys = [[("0", 1 - p), ("1", p)] for p in positive]
        probabilities = pa.array(keys, pa.map_(pa.string(), pa.float64()))
        return pa.table({"prediction": labels, "probabilities": probabilities})

    report = compare(answers([1, 0, 0], [0.9, 0.2, 0.4]), answers([1, 0, 1], [0.8, 0.2, 0.6]))
    assert report.positive_class == "1"
    assert report.difference_of == "probability of '1'"
    assert report.agreement_rate == pytest.approx(2 / 3)
    assert report.mean_abs_diff == pytest.approx(0.1)
    assert report.max_abs_diff == pytest.approx(0.2)
    first, second = report.disagreements
    assert [first.agree, second.agree] == [False, True]
    assert [first.difference, second.difference] == pytest.approx([0.2, -0.1])


def test_compare_lists_label_mismatches_before_probability_changes() -> None:
    def answers(labels: list[str], rows: list[dict[str, float]]) -> pa.Table:
        maps = pa.array([list(r.items()) for r in rows], pa.map_(pa.string(), pa.float64()))
        return pa.table({"prediction": labels, "probabilities": maps})

    stable = answers(
        ["cat", "dog", "eel"],
        [
            {"cat": 0.9, "dog": 0.1, "eel": 0.0},
            {"cat": 0.1, "dog": 0.8, "eel": 0.1},
            {"cat": 0.0, "dog": 0.4, "eel": 0.6},
        ],
    )
    candidate = answers(
        ["cat", "dog", "dog"],
        [
            {"cat": 0.3, "dog": 0.7, "eel": 0.0},
            {"cat": 0.1, "dog": 0.8, "eel": 0.1},
            {"cat": 0.0, "dog": 0.5, "eel": 0.5},
        ],
    )
    report = compare(stable, candidate)
    assert report.positive_class is None and report.mean_abs_diff is None
    assert [(d.stable, d.candidate) for d in report.disagreements] == [
        ("eel", "dog"),
        ("cat", "cat"),
    ]
    assert [d.difference for d in report.disagreements] == pytest.approx([0.1, 0.6])


def test_compare_counts_failed_rows_as_errors_and_compares_only_rows_both_answered() -> None:
    stable = pa.table({"prediction": [1.0, 2.0, 3.0], "status": [200, 200, 200]})
    candidate = pa.table(
        {
            "prediction": [1.0, None, 13.0],
            "status": [200, 500, 200],
            "error": [None, "model raised: boom", None],
        }
    )
    report = compare(stable, candidate)
    assert report.rows_compared == 2
    assert report.candidate.errors == 1
    assert report.candidate.error_rate == pytest.approx(1 / 3)
    assert report.candidate.error_reasons == (("model raised: boom", 1),)
    assert (report.stable.errors, report.max_abs_diff) == (0, 10.0)


def test_compare_reads_latency_once_per_request() -> None:
    stable = pa.table(
        {
            "prediction": [1.0, 1.0, 1.0, 1.0],
            "request_id": ["a", "a", "a", "b"],
            "row": [0, 1, 2, 0],
            "latency_ms": [10.0, 10.0, 10.0, 30.0],
        }
    )
    report = compare(stable, pa.table({"prediction": [1.0] * 4, "latency_ms": [5.0] * 4}))
    assert (report.stable.requests, report.stable.rows) == (2, 4)
    assert report.stable.p50_latency_ms == 20.0
    assert report.candidate.p50_latency_ms == 5.0


@pytest.mark.parametrize(
    ("primary", "shadow", "message"),
    [
        (pa.table({"prediction": [1]}), pa.table({"prediction": [1, 2]}), "not aligned"),
        (pa.table({"label": [1]}), pa.table({"prediction": [1]}), "no 'prediction' column"),
        (pd.DataFrame({"prediction": [1]}), pa.table({"prediction": [1]}), "Table.from_pandas"),
        (
            pa.table({"prediction": pa.array([[1, 2]])}),
            pa.table({"prediction": pa.array([[1, 2]])}),
            "several outputs per row",
        ),
    ],
    ids=["misaligned", "no-prediction", "dataframe", "multi-output"],
)
def test_compare_rejects_inputs_it_cannot_compare(
    primary: object, shadow: pa.Table, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        compare(primary, shadow)


def test_compare_rejects_an_unknown_kind_and_a_negative_top() -> None:
    table = pa.table({"prediction": [1.0]})
    with pytest.raises(InvalidInputError, match="Unknown kind 'ranking'"):
        compare(table, table, kind="ranking")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="top must be a whole number >= 0"):
        compare(table, table, top=-1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
        max_size=40,
    )
)
def test_regression_differences_equal_numpy_and_do_not_depend_on_the_side(
    pairs: list[tuple[float, float]],
) -> None:
    before = np.array([p[0] for p in pairs])
    after = np.array([p[1] for p in pairs])
    report = compare(pa.table({"prediction": before}), pa.table({"prediction": after}))
    swapped = compare(pa.table({"prediction": after}), pa.table({"prediction": before}))
    gaps = np.abs(after - before)
    assert report.mean_abs_diff == pytest.approx(gaps.mean(), rel=1e-9, abs=1e-9)
    assert report.max_abs_diff == gaps.max() == swapped.max_abs_diff
    assert len(report.disagreements) == min(20, int((gaps > 0).sum()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=40))
def test_agreement_is_the_share_of_equal_labels_and_the_confusion_transposes(
    pairs: list[tuple[str, str]],
) -> None:
    before = [p[0] for p in pairs]
    after = [p[1] for p in pairs]
    report = compare(labels_table(before), labels_table(after))
    swapped = compare(labels_table(after), labels_table(before))
    assert report.agreement_rate == pytest.approx(np.mean([a == b for a, b in pairs]))
    assert report.confusion is not None and swapped.confusion is not None
    matrix = np.array(report.confusion.counts)
    assert matrix.sum() == len(pairs)
    assert (np.array(swapped.confusion.counts) == matrix.T).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.sampled_from([0.0, 0.5, 1.0])),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 12),
)
def test_disagreements_are_the_largest_differences_earliest_first_on_ties(
    pairs: list[tuple[float, float]], top: int
) -> None:
    before = [p[0] for p in pairs]
    after = [p[1] for p in pairs]
    primary = pa.table({"prediction": before, "request_id": [str(i) for i in range(len(pairs))]})
    report = compare(primary, pa.table({"prediction": after}), top=top)
    gaps = [(-abs(b - a), i) for i, (a, b) in enumerate(pairs) if a != b]
    assert [int(d.request_id or "") for d in report.disagreements] == [
        i for _, i in sorted(gaps)[:top]
    ]


def test_identical_answers_show_full_agreement_and_no_disagreement() -> None:
    table = labels_table(["a", "b", "b"])
    report = compare(table, table)
    assert (report.agreement_rate, report.disagreements) == (1.0, ())


# -- shadow_report: captured primary and shadow records ------------------------------------


def write_shadow_rollout(capture: Capture, flipped: set[int], n: int = 10) -> None:
    """``n`` one-row requests; the candidate flips the label of the ``flipped`` ones."""
    for index in range(n):
        positive = 0.1 + 0.08 * index
        label = int(positive > 0.5)
        inputs = {"age": [20.0 + index], "plan": ["basic" if index % 2 else "pro"]}
        submit_records(
            capture.writer,
            f"r{index}",
            "primary",
            "churn/1",
            classified([label], [positive]),
            inputs=inputs,
            latency_ms=10.0 + index,
        )
        shifted = 1 - positive if index in flipped else positive
        submit_records(
            capture.writer,
            f"r{index}",
            "shadow",
            "churn/2",
            classified([int(shifted > 0.5)], [shifted]),
            inputs=inputs,
            latency_ms=20.0 + index,
        )
    capture.writer.flush()


def test_shadow_report_puts_the_rows_the_candidate_changed_at_the_top(
    capture: Capture,
) -> None:
    write_shadow_rollout(capture, flipped={3, 7})

    report = shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR)

    assert (report.source, report.kind, report.rows_compared) == ("shadow", "classification", 10)
    assert (report.stable.version, report.candidate.version) == ("churn/1", "churn/2")
    assert report.agreement_rate == 0.8
    assert report.max_abs_diff == pytest.approx(abs(1 - 2 * (0.1 + 0.08 * 3)))
    top = report.disagreements[:2]
    assert {d.request_id for d in top} == {"r3", "r7"}
    assert all(not d.agree for d in top)
    assert {d.request_id: d.inputs for d in top} == {
        "r3": {"age": 23.0, "plan": "basic"},
        "r7": {"age": 27.0, "plan": "basic"},
    }


def test_shadow_report_gives_each_version_its_own_latency_and_errors(capture: Capture) -> None:
    write_shadow_rollout(capture, flipped=set(), n=4)
    submit_records(capture.writer, "x", "primary", "churn/1", classified([0], [0.1]))
    submit_records(
        capture.writer, "x", "shadow", "churn/2", None, status=500, error="model raised: boom"
    )
    capture.writer.flush()

    report = shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR)

    assert (report.stable.requests, report.candidate.requests) == (5, 5)
    assert (report.stable.errors, report.candidate.errors) == (0, 1)
    assert report.candidate.error_reasons == (("model raised: boom", 1),)
    assert report.stable.p50_latency_ms == pytest.approx(11.0)
    assert report.candidate.p50_latency_ms == pytest.approx(21.0)


def test_shadow_report_of_a_regression_orders_by_absolute_difference(capture: Capture) -> None:
    for index, (before, after) in enumerate([(1.0, 1.0), (2.0, 2.5), (3.0, 1.0), (4.0, 4.0)]):
        submit_records(capture.writer, f"q{index}", "primary", "price/1", regressed([before]))
        submit_records(capture.writer, f"q{index}", "shadow", "price/2", regressed([after]))
    capture.writer.flush()

    report = shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR, top=5)

    assert report.kind == "regression"
    assert (report.mean_abs_diff, report.max_abs_diff) == (0.625, 2.0)
    assert [d.request_id for d in report.disagreements] == ["q2", "q1"]


def test_shadow_report_without_shadow_records_says_how_to_get_some(capture: Capture) -> None:
    submit_records(capture.writer, "r1", "primary", "churn/1", classified([1], [0.9]))
    capture.writer.flush()
    with pytest.raises(InvalidInputError, match="No shadow records for endpoint 'churn'") as info:
        shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR)
    assert "--strategy shadow" in str(info.value)
    assert "ferryman replay churn MODEL_REF" in str(info.value)


def test_shadow_report_only_reads_its_window(capture: Capture) -> None:
    write_shadow_rollout(capture, flipped={1})
    with pytest.raises(InvalidInputError, match="No shadow records"):
        shadow_report(capture.store, "churn", since=T0 + HOUR, until=T0 + 2 * HOUR)


def test_shadow_report_asks_which_candidate_when_there_are_several(capture: Capture) -> None:
    write_shadow_rollout(capture, flipped={1}, n=3)
    submit_records(capture.writer, "z", "primary", "churn/1", classified([1], [0.9]))
    submit_records(capture.writer, "z", "shadow", "churn/3", classified([0], [0.2]))
    capture.writer.flush()
    with pytest.raises(InvalidInputError, match=r"several candidates .*churn/2 \(3 rows\)"):
        shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR)
    report = shadow_report(
        capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR, candidate="churn/3"
    )
    assert (report.candidate.version, report.rows_compared, report.agreement_rate) == (
        "churn/3",
        1,
        0.0,
    )
    with pytest.raises(InvalidInputError, match="No shadow records of 'churn/9'"):
        shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR, candidate="churn/9")


def test_shadow_report_keeps_the_latest_pairs_beyond_its_limit(capture: Capture) -> None:
    write_shadow_rollout(capture, flipped=set(), n=5)
    report = shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR, limit=3)
    assert report.rows_compared == 3
    assert any("more than 3 pairs" in warning for warning in report.warnings)


def test_shadow_report_refuses_a_naive_window(capture: Capture) -> None:
    with pytest.raises(InvalidInputError, match="naive datetime"):
        shadow_report(capture.store, "churn", since=T0.replace(tzinfo=None))


# -- the report's JSON and HTML --------------------------------------------------------------


@pytest.fixture
def report(capture: Capture) -> DiffReport:
    write_shadow_rollout(capture, flipped={3, 7})
    return shadow_report(capture.store, "churn", since=T0 - HOUR, until=T0 + HOUR)


def test_the_json_form_is_strict_json_with_the_figures(report: DiffReport) -> None:
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["agreement_rate"] == 0.8
    assert document["confusion"] == {"labels": ["0", "1"], "counts": [[5, 1], [1, 3]]}
    assert document["stable"]["version"] == "churn/1"
    assert {d["request_id"] for d in document["disagreements"][:2]} == {"r3", "r7"}
    assert document["since"] == (T0 - HOUR).isoformat()


def test_the_html_page_is_standalone_and_shows_the_numbers(report: DiffReport) -> None:
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert re.search(r"<script[^>]*\bsrc=", page) is None  # Plotly is embedded, not fetched
    assert "Plotly.newPlot" in page
    for text in ("churn/1", "churn/2", "0.8", "r3:0", "r7:0", "age=23.0"):
        assert text in page


def test_write_chooses_html_or_json_by_suffix(report: DiffReport, tmp_path: Path) -> None:
    assert report.write(tmp_path / "r.json").read_text().startswith("{")
    assert report.write(tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(InvalidInputError, match=r"expected \.html or \.json"):
        report.write(tmp_path / "r.pdf")


def test_the_docstring_example_runs() -> None:
    result = doctest.testmod(diff, verbose=False)
    assert (result.failed, result.attempted > 0) == (0, True)


def test_all_is_sorted_and_lists_every_class_and_function_of_the_report() -> None:
    def order(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    assert diff.__all__ == sorted(diff.__all__, key=order)
    ours = {
        name
        for name, value in vars(diff).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("ferryman.rollout")
    }
    assert ours <= set(diff.__all__)
    assert all(hasattr(diff, name) for name in diff.__all__)
