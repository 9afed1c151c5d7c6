"""The native protocol over HTTP, in process: predictions, request ids, timings, errors."""

from __future__ import annotations

import re

import pytest
from sklearn.datasets import load_breast_cancer

from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio

CANCER = load_breast_cancer(as_frame=True).data
PREDICT = "/v1/endpoints/{}/predict"


async def test_records_get_predictions_probabilities_classes_and_the_version(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("cancer"), json={"instances": CANCER.head(3).to_dict("records")}
        )

    body = response.json()
    assert response.status_code == 200
    assert body["predictions"] == [0, 0, 0]
    assert len(body["probabilities"]) == 3
    assert body["classes"] == [0, 1]
    assert body["model_version"] == "cancer/1"


async def test_the_split_layout_gives_the_same_predictions_as_records(
    serve_app: ServeApp,
) -> None:
    rows = CANCER.iloc[[0, 19, 20]]
    async with serve_app() as served:
        records = await served.client.post(
            PREDICT.format("cancer"), json={"instances": rows.to_dict("records")}
        )
        split = await served.client.post(
            PREDICT.format("cancer"),
            json={"columns": list(rows.columns), "data": rows.to_numpy().tolist()},
        )

    assert records.json()["predictions"] == split.json()["predictions"] == [0, 1, 1]


async def test_a_tensor_model_takes_rows(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("iris"), json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
        )

    assert response.status_code == 200
    assert response.json()["predictions"] == [0, 2]


async def test_passthrough_columns_are_accepted_and_not_fed_to_the_model(
    serve_app: ServeApp,
) -> None:
    record = {"age": 30, "income": 1.0, "city": "Oslo", "member": True, "customer_id": "c-1"}
    async with serve_app() as served:
        response = await served.client.post(PREDICT.format("mixed"), json={"instances": [record]})

    assert response.status_code == 200
    assert response.json()["predictions"] == [131]


async def test_an_incoming_request_id_is_echoed_in_header_and_body(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("toy"),
            json={"instances": [{"x": 1.5, "delay": 0}]},
            headers={"X-Request-ID": "order-77"},
        )

    assert response.headers["x-request-id"] == "order-77"
    assert response.json()["request_id"] == "order-77"


async def test_a_request_without_id_gets_a_generated_one(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("toy"), json={"instances": [{"x": 1.5, "delay": 0}]}
        )

    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert response.json()["request_id"] == generated


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (PREDICT.format("toy"), {"instances": [{"x": "one", "delay": 0}]}),
        (PREDICT.format("nope"), {"instances": []}),
        ("/no/such/route", None),
    ],
    ids=["client-error", "unknown-endpoint", "unknown-route"],
)
async def test_error_responses_echo_the_request_id_too(
    serve_app: ServeApp, path: str, body: object
) -> None:
    async with serve_app() as served:
        response = await served.client.post(path, json=body, headers={"X-Request-ID": "r-9"})

    assert response.status_code in (400, 404)
    assert response.headers["x-request-id"] == "r-9"
    assert response.json()["request_id"] == "r-9"


async def test_an_unusable_request_id_is_replaced(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("toy"),
            json={"instances": [{"x": 1.0, "delay": 0}]},
            headers={"X-Request-ID": "x" * 500},
        )

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_responses_report_queue_and_compute_time(serve_app: ServeApp) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("toy"), json={"instances": [{"x": 1.0, "delay": 0.05}]}
        )

    assert float(response.headers["x-queue-time-ms"]) >= 0.0
    assert float(response.headers["x-compute-time-ms"]) >= 50.0


async def test_a_mistyped_value_is_a_400_naming_column_row_and_expectation(
    serve_app: ServeApp,
) -> None:
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("toy"),
            json={"instances": [{"x": 1.0, "delay": 0}, {"x": "high", "delay": 0}]},
        )

    body = response.json()
    assert response.status_code == 400
    assert body["code"] == "schema_validation"
    assert (body["column"], body["row"]) == ("x", 1)
    assert "float64" in body["expected"]
    assert "column 'x', row 1" in body["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "malformed JSON"),
        (b'{"instances": []}', "empty batch"),
        (b'{"instances": [{"x": 1.0}]}', "column 'delay', row 0: missing"),
        (b'{"instances": [{"x": 1.0, "delay": 0, "y": 2}]}', "unknown column"),
        (b"\xff\xfe", "malformed JSON"),
    ],
    ids=["truncated", "empty-batch", "missing-column", "unknown-column", "binary"],
)
async def test_client_mistakes_are_400s_saying_what_is_wrong(
    serve_app: ServeApp, content: bytes, message: str
) -> None:
    async with serve_app() as served:
        response = await served.client.post(PREDICT.format("toy"), content=content)

    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_a_large_body_is_decoded_off_the_event_loop_and_answered(
    serve_app: ServeApp,
) -> None:
    rows = CANCER.sample(n=3000, replace=True, random_state=0)
    async with serve_app() as served:
        response = await served.client.post(
            PREDICT.format("cancer"),
            json={"columns": list(rows.columns), "data": rows.to_numpy().tolist()},
        )

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 3000
