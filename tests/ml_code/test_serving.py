"""The inference handler and the local endpoint app, as a caller and SageMaker see them."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from ml_code.data.schema import CATEGORIES
from ml_code.features.definitions import MODEL_FEATURES, score_rows
from ml_code.serving.app import InferenceApp, serve
from ml_code.serving.capture import DirectoryCaptureWriter, S3CaptureWriter, capture_record
from ml_code.serving.errors import RequestError
from ml_code.serving.inference import input_fn, model_fn, output_fn, predict_fn
from ml_code.serving.payloads import Limits
from ml_code.training.model import Hyperparameters, build_model

JSON, CSV = "application/json", "text/csv"


def customer(i: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "customer_id": f"c{i}",
        "segment": ("budget", "regular", "premium")[i % 3],
        "recency_days": 2.0 + i,
        "frequency_28d": i % 4,
        "monetary_28d": 40.0 + 5 * i,
        "avg_purchase_price": 15.0 + i,
        "views_7d": 3 + i,
        "views_28d": 9 + 2 * i,
    }
    for n, category in enumerate(CATEGORIES):
        record[f"affinity_{category}"] = (1 + (n + i) % 3) / 16
        record[f"recent_affinity_{category}"] = (1 + (n * i) % 4) / 20
    return record


def item(j: int) -> dict[str, Any]:
    return {
        "item_id": f"i{j}",
        "category": CATEGORIES[j % len(CATEGORIES)],
        "price": 5.0 + 3 * j,
        "price_band": ("low", "mid", "high", "premium")[j % 4],
        "popularity_7d": j % 5,
        "popularity_28d": 2 * j,
        "conversion_rate_28d": 0.02 * (1 + j % 4),
        "item_age_days": 10 + j,
    }


def instances(n: int = 4) -> list[dict[str, Any]]:
    """Score-request rows as a client sends them: plain JSON values, ids included."""
    rows = score_rows(customer(1), pd.DataFrame([item(j) for j in range(n)]))
    return json.loads(rows.astype(object).to_json(orient="records"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = pd.concat(
        [score_rows(customer(i), pd.DataFrame([item(j) for j in range(12)])) for i in range(6)],
        ignore_index=True,
    )
    labels = (rows["price"] < 20).astype(int) ^ (rows["segment"] == "premium").astype(int)
    hp = Hyperparameters(max_iter=15, min_samples_leaf=3, max_depth=3)
    estimator = build_model(hp).fit(rows[list(MODEL_FEATURES)], labels)
    root = tmp_path_factory.mktemp("model")
    joblib.dump(estimator, root / "model.joblib")
    (root / "metadata.json").write_text(json.dumps({"features": list(MODEL_FEATURES)}))
    return root


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Any:
    return model_fn(model_dir)


def invoke(model: Any, body: str | bytes, content_type: str = JSON, accept: str = JSON) -> Any:
    out, out_type = output_fn(predict_fn(input_fn(body, content_type), model), accept)
    return json.loads(out) if out_type == JSON else out.decode()


# ---- answers ---------------------------------------------------------------------------------


def test_scores_each_row_with_the_trained_model(model: Any) -> None:
    rows = instances(4)
    answer = invoke(model, json.dumps({"instances": rows}))
    expected = model.estimator.predict_proba(pd.DataFrame(rows)[list(MODEL_FEATURES)])[:, 1]
    np.testing.assert_allclose(answer["scores"], expected)
    assert answer["item_id"] == ["i0", "i1", "i2", "i3"]


def test_csv_and_json_rows_get_the_same_scores(model: Any) -> None:
    rows = instances(5)
    csv_body = pd.DataFrame(rows).to_csv(index=False)
    from_csv = pd.read_csv(pd.io.common.StringIO(invoke(model, csv_body, CSV, CSV)))
    from_json = invoke(model, json.dumps(rows))
    np.testing.assert_allclose(from_csv["score"], from_json["scores"])


def test_ranking_returns_top_k_by_score_matching_row_scores(model: Any) -> None:
    candidates = [item(j) for j in range(8)]
    ranked = invoke(model, json.dumps({"customer": customer(1), "candidates": candidates, "k": 3}))
    row_scores = invoke(model, json.dumps(instances(8)))["scores"]
    best = np.argsort(-np.asarray(row_scores), kind="stable")[:3]
    assert ranked["customer_id"] == "c1"
    assert [i["item_id"] for i in ranked["items"]] == [f"i{j}" for j in best]
    assert [i["rank"] for i in ranked["items"]] == [1, 2, 3]
    np.testing.assert_allclose([i["score"] for i in ranked["items"]], np.sort(row_scores)[::-1][:3])


def test_ranking_with_fewer_candidates_than_k_returns_them_all(model: Any) -> None:
    ranked = invoke(model, json.dumps({"customer": customer(2), "candidates": [item(1), item(2)]}))
    assert sorted(i["item_id"] for i in ranked["items"]) == ["i1", "i2"]


def test_feature_store_string_values_are_accepted(model: Any) -> None:
    as_strings = {k: str(v) for k, v in customer(1).items()}
    ranked = invoke(model, json.dumps({"customer": as_strings, "candidates": [item(1)], "k": 1}))
    direct = invoke(model, json.dumps({"customer": customer(1), "candidates": [item(1)], "k": 1}))
    assert ranked == direct


# ---- rejections: one per reason, each naming what is wrong ------------------------------------


def _rank(**changes: Any) -> str:
    payload: dict[str, Any] = {"customer": customer(1), "candidates": [item(1), item(2)], "k": 2}
    payload.update(changes)
    return json.dumps(payload)


def _rows_with(row: int, **changes: Any) -> str:
    rows = instances(4)
    rows[row - 1].update(changes)
    return json.dumps({"instances": rows})


def _rows_without(row: int, column: str) -> str:
    rows = instances(3)
    del rows[row - 1][column]
    return json.dumps(rows)


def _csv(mutate: Any) -> str:
    return mutate(pd.DataFrame(instances(3)).to_csv(index=False))


def _bad(body: str | bytes, reason: str, content_type: str = JSON, status: int = 400) -> Any:
    return pytest.param(body, content_type, status, reason)


def _without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


NUMBER = "expected a finite number"
REJECTIONS = {
    "unsupported content type": _bad(
        _rank(), "unsupported content type 'text/plain'", "text/plain", 415
    ),
    "empty body": _bad("  \n", "request body is empty"),
    "not utf-8": _bad(b"\xff\xfe{}", "request body is not valid UTF-8"),
    "malformed json": _bad('{"instances": [', "malformed JSON: Expecting value"),
    "json of another shape": _bad('{"rows": []}', 'JSON body must be {"instances": [...]}'),
    "empty instances": _bad('{"instances": []}', "no rows to score: the list is empty"),
    "row not an object": _bad("[[1, 2]]", "row 1: expected an object of features, got a list"),
    "missing column": _bad(_rows_without(2, "price"), "row 2: missing column 'price'"),
    "unknown column": _bad(_rows_with(1, colour="red"), "row 1: unknown column 'colour'"),
    "text in a number": _bad(
        _rows_with(3, recency_days="abc"), f"column 'recency_days' row 3: {NUMBER}, got 'abc'"
    ),
    "null number": _bad(_rows_with(2, price=None), f"column 'price' row 2: {NUMBER}, got null"),
    "boolean number": _bad(_rows_with(1, price=True), f"column 'price' row 1: {NUMBER}, got true"),
    "json NaN": _bad(
        _rows_with(4, price_ratio=float("nan")), f"column 'price_ratio' row 4: {NUMBER}, got NaN"
    ),
    "csv infinity": _bad(
        _csv(lambda t: t.replace(",5.0,", ",inf,", 1)),
        f"column 'price' row 1: {NUMBER}, got 'inf'",
        CSV,
    ),
    "fraction in an integer": _bad(
        _rows_with(2, popularity_7d=2.5),
        "column 'popularity_7d' row 2: expected an integer, got 2.5",
    ),
    "number as a category": _bad(
        _rows_with(1, segment=3), "column 'segment' row 1: expected a non-empty string, got 3"
    ),
    "csv ragged row": _bad(
        _csv(lambda t: t.rstrip("\n") + ",extra\n"),
        "malformed CSV: row 3 has 19 fields, the header has 18",
        CSV,
    ),
    "csv header only": _bad(
        _csv(lambda t: t.split("\n")[0] + "\n"), "CSV body has a header row but no data rows", CSV
    ),
    "csv repeated header": _bad(
        _csv(lambda t: t.replace("customer_id,", "price,", 1)),
        "malformed CSV: header repeats columns ['price']",
        CSV,
    ),
    "k zero": _bad(_rank(k=0), "'k' must be from 1 to 100, got 0"),
    "k too large": _bad(_rank(k=101), "'k' must be from 1 to 100, got 101"),
    "k not an integer": _bad(_rank(k="ten"), "'k' must be an integer from 1 to 100, got 'ten'"),
    "unknown ranking field": _bad(_rank(user="x"), "unknown field ['user'] in a ranking request"),
    "customer not an object": _bad(
        _rank(customer=[1]), "'customer' must be an object of features, got a list"
    ),
    "no candidates": _bad(_rank(candidates=[]), "no candidates to score: the list is empty"),
    "customer missing a feature": _bad(
        _rank(customer=_without(customer(1), "views_7d")), "customer: missing column 'views_7d'"
    ),
    "candidate with a bad value": _bad(
        _rank(candidates=[item(1), {**item(2), "price": "cheap"}]),
        f"candidate 2 field 'price': {NUMBER}, got 'cheap'",
    ),
    "duplicate candidates": _bad(
        _rank(candidates=[item(1), item(1)]), "candidate 2: duplicate item_id 'i1'"
    ),
    "missing item id": _bad(
        _rank(candidates=[_without(item(1), "item_id")]), "candidate 1: missing column 'item_id'"
    ),
}


@pytest.fixture(autouse=True)
def default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_MAX_REQUEST_BYTES", raising=False)
    monkeypatch.delenv("MLOPS_MAX_K", raising=False)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"), REJECTIONS.values(), ids=REJECTIONS.keys()
)
def test_bad_request_is_a_client_error_naming_the_problem(
    body: str | bytes, content_type: str, status: int, reason: str
) -> None:
    with pytest.raises(RequestError) as caught:
        input_fn(body, content_type)
    assert caught.value.status == status
    assert str(caught.value).startswith(reason)


def test_oversized_body_is_rejected_with_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_MAX_REQUEST_BYTES", "100")
    with pytest.raises(RequestError) as caught:
        input_fn(_rank(), JSON)
    assert caught.value.status == 413
    assert "the limit is 100" in str(caught.value)


def test_unsupported_accept_is_rejected_with_406(model: Any) -> None:
    with pytest.raises(RequestError) as caught:
        output_fn(predict_fn(input_fn(_rank(), JSON), model), "application/xml")
    assert caught.value.status == 406
    assert "accept application/json or text/csv" in str(caught.value)


def test_model_trained_on_unknown_features_fails_at_load(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes((model_dir / "model.joblib").read_bytes())
    (tmp_path / "metadata.json").write_text(json.dumps({"features": ["shoe_size"]}))
    with pytest.raises(ValueError, match="shoe_size"):
        model_fn(tmp_path)


# ---- the local endpoint ----------------------------------------------------------------------


@pytest.fixture
def endpoint(model_dir: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    capture_root = tmp_path / "capture"
    app = InferenceApp(
        model_dir,
        capture=DirectoryCaptureWriter(capture_root, "recs-dev", "AllTraffic"),
        limits=Limits(max_bytes=20_000, max_k=50),
        clock=lambda: datetime(2026, 11, 25, 8, 30, 5, tzinfo=UTC),
    )
    server = serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, capture_root
    finally:
        server.shutdown()
        server.server_close()


def _call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_endpoint_keeps_serving_after_a_bad_request_and_captures_good_ones(
    endpoint: tuple[int, Path],
) -> None:
    port, capture_root = endpoint
    assert _call(port, "GET", "/ping")[0] == 200

    bad = _rows_with(3, recency_days="abc").encode()
    status, body = _call(port, "POST", "/invocations", bad, {"Content-Type": JSON})
    assert status == 400
    assert json.loads(body) == {
        "error": "column 'recency_days' row 3: expected a finite number, got 'abc'"
    }

    good = _rank(k=2).encode()
    headers = {"Content-Type": JSON, "X-Amzn-SageMaker-Inference-Id": "req-42"}
    status, body = _call(port, "POST", "/invocations", good, headers)
    assert status == 200
    assert [i["rank"] for i in json.loads(body)["items"]] == [1, 2]

    files = list(capture_root.rglob("*.jsonl"))
    assert [f.parent.relative_to(capture_root).as_posix() for f in files] == [
        "recs-dev/AllTraffic/2026/11/25/08"
    ]
    lines = files[0].read_text().splitlines()
    assert len(lines) == 1  # the rejected request is not captured
    record = json.loads(lines[0])
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": JSON,
        "mode": "INPUT",
        "data": good.decode(),
        "encoding": "JSON",
    }
    assert record["captureData"]["endpointOutput"] == {
        "observedContentType": JSON,
        "mode": "OUTPUT",
        "data": body.decode(),
        "encoding": "JSON",
    }
    assert record["eventMetadata"]["inferenceId"] == "req-42"
    assert record["eventMetadata"]["inferenceTime"] == "2026-11-25T08:30:05Z"
    assert record["eventVersion"] == "0"


def test_endpoint_answers_oversized_bodies_and_unknown_routes_with_client_errors(
    endpoint: tuple[int, Path],
) -> None:
    port, _ = endpoint
    big = json.dumps({"instances": instances(4) * 20}).encode()
    status, body = _call(port, "POST", "/invocations", big, {"Content-Type": JSON})
    assert status == 413
    assert "the limit is 20000" in json.loads(body)["error"]
    assert _call(port, "GET", "/models")[0] == 404
    assert _call(port, "GET", "/invocations")[0] == 405
    csv_rows = pd.DataFrame(instances(2)).to_csv(index=False).encode()
    status, body = _call(
        port, "POST", "/invocations", csv_rows, {"Content-Type": CSV, "Accept": CSV}
    )
    assert status == 200
    assert body.decode().splitlines()[0] == "customer_id,item_id,score"


def test_ping_reports_503_until_a_model_loads(tmp_path: Path) -> None:
    app = InferenceApp(tmp_path / "missing")
    statuses: list[str] = []
    body = app({"PATH_INFO": "/ping", "REQUEST_METHOD": "GET"}, lambda s, h: statuses.append(s))
    assert statuses == ["503 Service Unavailable"]
    assert "model not loaded" in json.loads(b"".join(body))["error"]


# ---- capture writers -------------------------------------------------------------------------


def _record(when: datetime) -> dict[str, Any]:
    return capture_record(
        request_body=b"a,b\n1,2\n",
        request_content_type=CSV,
        response_body=b"\x00\x01",
        response_content_type="application/x-npy",
        inference_time=when,
    )


def test_capture_files_split_at_the_hour_in_sagemaker_layout(tmp_path: Path) -> None:
    writer = DirectoryCaptureWriter(tmp_path, "recs", "blue", prefix="capture", max_records=10)
    writer.write(_record(datetime(2026, 1, 2, 3, 59, 59, tzinfo=UTC)))
    writer.write(_record(datetime(2026, 1, 2, 4, 0, 1, tzinfo=UTC)))
    writer.close()
    dirs = sorted(p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert dirs == ["capture/recs/blue/2026/01/02/03", "capture/recs/blue/2026/01/02/04"]
    line = json.loads(next(tmp_path.rglob("*.jsonl")).read_text())
    assert line["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert line["captureData"]["endpointOutput"]["encoding"] == "BASE64"


def test_s3_capture_writer_honours_the_destination_uri_and_kms_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="capture-bucket")
        key_id = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
        writer = S3CaptureWriter("s3://capture-bucket/datacapture", "recs", kms_key_id=key_id)
        writer.write(_record(datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)))
        (obj,) = s3.list_objects_v2(Bucket="capture-bucket")["Contents"]
        assert obj["Key"].startswith("datacapture/recs/AllTraffic/2026/05/06/07/08-09-")
        head = s3.head_object(Bucket="capture-bucket", Key=obj["Key"])
        assert head["ServerSideEncryption"] == "aws:kms"
        body = s3.get_object(Bucket="capture-bucket", Key=obj["Key"])["Body"].read()
        assert json.loads(body)["eventMetadata"]["inferenceTime"] == "2026-05-06T07:08:09Z"
