"""The privacy policy: parsing, keyed hashing, redaction, and no raw PII anywhere on disk."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferryman.capture import (
    CaptureWriter,
    EndpointCapture,
    LogStore,
    PrivacyAction,
    PrivacyPolicy,
    keyed_hash,
    redact_text,
)
from ferryman.capture.privacy import apply_action
from ferryman.errors import InvalidInputError, SchemaValidationError
from tests.capture.conftest import SECRET, classified, frame

MakeWriter = Callable[..., CaptureWriter]

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
IPV4 = "203.0.113.77"
IPV6 = "2001:db8::8a2e:370:7334"
USER = "user-8842-secret"
SSN_LIKE = "alpha-bravo-charlie"
PLANTED = [EMAIL, PHONE, CARD, IPV4, IPV6, USER, SSN_LIKE, "4111111111111111"]


# -- the policy object ---------------------------------------------------------------------


def test_policy_from_mapping_defaults_to_keep_and_round_trips_through_json() -> None:
    policy = PrivacyPolicy.from_mapping({"email": "hash", "note": "REDACT", "ssn": "drop"})

    assert policy.action("email") is PrivacyAction.HASH
    assert policy.action("note") is PrivacyAction.REDACT
    assert policy.action("age") is PrivacyAction.KEEP
    assert PrivacyPolicy.from_json(policy.to_json()) == policy
    assert json.loads(policy.to_json()) == {"email": "hash", "note": "redact", "ssn": "drop"}
    assert policy.requires_secret
    assert policy.protected == frozenset({"email", "note", "ssn"})


def test_parse_option_reads_column_equals_action() -> None:
    assert PrivacyPolicy.parse_option(" email = hash ") == ("email", PrivacyAction.HASH)
    assert PrivacyPolicy.from_options(["a=drop", "b=keep"]).to_dict() == {"a": "drop", "b": "keep"}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: PrivacyPolicy.from_mapping({"email": "hsh"}),
            r"Unknown privacy action 'hsh' for column 'email'\. Available: drop, hash, keep, "
            r"redact\.",
        ),
        (lambda: PrivacyPolicy.parse_option("email"), r"expected COLUMN=ACTION"),
        (lambda: PrivacyPolicy.parse_option("=hash"), r"expected COLUMN=ACTION"),
        (lambda: PrivacyPolicy.from_options(["a=drop", "a=hash"]), "two privacy options"),
        (lambda: PrivacyPolicy.from_mapping({"": "drop"}), "Invalid column name ''"),
        (lambda: PrivacyPolicy.from_json("[1]"), "must be an object"),
        (lambda: PrivacyPolicy.from_json("{"), "must be a JSON object"),
        (lambda: PrivacyPolicy.from_mapping({"x": 3}), "Unknown privacy action 3"),
    ],
    ids=["unknown", "no-equals", "no-column", "twice", "empty", "not-object", "bad-json", "type"],
)
def test_bad_policies_are_refused_with_a_clear_message(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build()


def test_keyed_hash_is_hmac_sha256_hex() -> None:
    import hashlib
    import hmac

    assert keyed_hash("123", SECRET) == hmac.new(SECRET, b"123", hashlib.sha256).hexdigest()


def test_hash_of_a_number_column_hashes_its_text() -> None:
    hashed = apply_action(pa.array([123, None, 123]), PrivacyAction.HASH, SECRET)

    assert hashed is not None
    assert hashed.to_pylist() == [keyed_hash("123", SECRET), None, keyed_hash("123", SECRET)]


def test_hash_without_a_secret_drops_the_column() -> None:
    assert apply_action(pa.array(["a"]), PrivacyAction.HASH, None) is None


# -- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"write to {EMAIL} today", "write to [EMAIL] today"),
        (f"call {PHONE}", "call [PHONE]"),
        ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
        ("ring 020 7946 0958", "ring [PHONE]"),
        (f"card {CARD}.", "card [CARD]."),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        (f"from {IPV4}:8080", "from [IP]:8080"),
        (f"from {IPV6}.", "from [IP]."),
        ("::ffff:192.0.2.1 and fe80::1%eth0", "[IP] and [IP]"),
        ("order 1234567, on 2026-01-15 at 12:30:45", "order 1234567, on 2026-01-15 at 12:30:45"),
        ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),
        ("version 1.2.3 and 999.1.1.1", "version 1.2.3 and 999.1.1.1"),
    ],
    ids=[
        "email",
        "international-phone",
        "us-phones",
        "national-phone",
        "card",
        "card-dashes",
        "ipv4",
        "ipv6",
        "ipv6-forms",
        "no-pii",
        "luhn-fails",
        "not-ip",
    ],
)
def test_redact_text_replaces_each_kind(text: str, expected: str) -> None:
    assert redact_text(text) == expected


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", min_size=1, max_size=12)
_SMALL_NUMBER = st.integers(0, 9999).map(str)
_PUNCTUATION = st.sampled_from([" ", ", ", ". ", "! ", " - ", "; ", " (", ") "])


@st.composite
def plain_text(draw: st.DrawFn) -> str:
    """Words and small numbers; never two numbers in a row, so no phone or card appears."""
    parts = []
    for index in range(draw(st.integers(0, 12))):
        word = draw(_SMALL_NUMBER) if index % 2 else draw(_WORD)
        parts.append(word + draw(_PUNCTUATION))
    return "".join(parts)


@given(text=plain_text())
def test_text_without_personal_data_is_unchanged(text: str) -> None:
    assert redact_text(text) == text


@given(before=plain_text(), email=st.emails(), after=plain_text())
def test_an_embedded_email_is_always_redacted(before: str, email: str, after: str) -> None:
    redacted = redact_text(f"{before} {email} {after}")

    assert email not in redacted
    assert "[EMAIL]" in redacted


@given(
    before=plain_text(),
    address=st.ip_addresses().map(str),
    after=plain_text(),
)
def test_an_embedded_ip_address_is_always_redacted(before: str, address: str, after: str) -> None:
    redacted = redact_text(f"{before} {address} {after}")

    assert address not in redacted
    assert "[IP]" in redacted


@given(digits=st.lists(st.integers(0, 9), min_size=15, max_size=15))
def test_a_luhn_valid_card_number_is_always_redacted(digits: list[int]) -> None:
    payload = [4, *digits[1:]]
    # The check digit goes last, so the payload's last digit is the first one doubled.
    total = sum(
        (d * 2 - 9 if d * 2 > 9 else d * 2) if position % 2 == 0 else d
        for position, d in enumerate(reversed(payload))
    )
    number = "".join(map(str, [*payload, (10 - total % 10) % 10]))

    assert redact_text(f"pay with {number} now") == "pay with [CARD] now"


# -- nothing raw on disk ------------------------------------------------------------------


def _planted_requests(writer: CaptureWriter) -> None:
    policy = PrivacyPolicy.from_mapping(
        {
            "email": "hash",
            "note": "redact",
            "phone": "drop",
            "user_id": "hash",
            "free_text": "redact",
            "secret_word": "drop",
        }
    )
    writer.configure("churn", EndpointCapture(privacy=policy))
    for index in range(3):
        writer.submit(
            f"r{index}",
            "churn",
            "churn/1",
            "primary",
            frame(
                age=[30.0 + index],
                free_text=[f"mail {EMAIL}, call {PHONE}, card {CARD} from {IPV4} / {IPV6}"],
                secret_word=[SSN_LIKE],
            ),
            classified([1], [[0.3, 0.7]], [0, 1]),
            1.0,
            passthrough={
                "email": [EMAIL],
                "phone": [PHONE],
                "user_id": [USER],
                "note": [f"card 4111111111111111, ip {IPV4}, {EMAIL}"],
            },
        )
    error = SchemaValidationError(
        f"column 'secret_word', row 0: expected a number, got '{SSN_LIKE}' for {USER}"
    )
    writer.submit(
        "bad",
        "churn",
        "churn/1",
        "primary",
        {"secret_word": [SSN_LIKE], "free_text": [EMAIL]},
        None,
        0.2,
        400,
        error,
        {"email": [EMAIL], "user_id": [USER]},
    )
    writer.submit(
        "crash", "churn", "churn/1", "primary", None, None, 0.2, 500, f"failed on {EMAIL}"
    )


def _decoded_parquet_text(path: Path) -> str:
    table = pq.read_table(path)
    return json.dumps(table.to_pylist(), default=str) + str(pq.read_metadata(path).schema)


def test_no_planted_personal_data_is_stored_anywhere_under_home(
    make_writer: MakeWriter, store: LogStore, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer()
    with caplog.at_level(logging.DEBUG, logger="ferryman"):
        _planted_requests(writer)
        writer.stop()
        store.submit_feedback([{"request_id": "r0", "label": 1}])
        store.mark("churn", "r1", "wrong", reviewer="rev", comment="looks off")
        store.compact(now=store.now().replace(year=2030))
        store.export("churn", root.parent / "export.csv", format="csv", role=None)
        store.export("churn", root.parent / "export.parquet", role=None)

    home = root.parent
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.suffix == ".parquet" for path in files)
    for path in files:
        raw = path.read_bytes()
        decoded = _decoded_parquet_text(path) if path.suffix == ".parquet" else ""
        for secret in PLANTED:
            assert secret.encode() not in raw, (path, secret)
            assert secret not in decoded, (path, secret)
    for secret in PLANTED:
        assert secret not in caplog.text


def test_hashed_columns_still_join_through_pii_hash(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    _planted_requests(writer)
    writer.flush()

    rows = store.query(
        f"SELECT request_id FROM predictions WHERE email = pii_hash('{EMAIL}') "
        f"AND user_id = pii_hash('{USER}') ORDER BY request_id"
    ).rows

    assert rows == [("bad",), ("r0",), ("r1",), ("r2",)]


def test_dropped_and_redacted_columns_read_as_expected(
    make_writer: MakeWriter, store: LogStore
) -> None:
    writer = make_writer()
    _planted_requests(writer)
    writer.flush()

    columns = {row[0] for row in store.query("DESCRIBE predictions").rows}
    note, text = store.query(
        "SELECT note, inputs.free_text FROM predictions WHERE request_id = 'r0'"
    ).rows[0]

    assert "phone" not in columns
    assert note == "card [CARD], ip [IP], [EMAIL]"
    assert text == "mail [EMAIL], call [PHONE], card [CARD] from [IP] / [IP]"


def test_hashing_without_a_secret_stores_nothing_of_the_column(
    make_writer: MakeWriter, store: LogStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(secret=None)
    with caplog.at_level(logging.WARNING, logger="ferryman.capture"):
        writer.configure(
            "churn", EndpointCapture(privacy=PrivacyPolicy.from_mapping({"email": "hash"}))
        )
    writer.submit(
        "r",
        "churn",
        "churn/1",
        "primary",
        frame(a=[1.0]),
        classified([1], [[0, 1]], [0, 1]),
        1.0,
        passthrough={"email": [EMAIL]},
    )
    writer.flush()

    columns = {row[0] for row in store.query("DESCRIBE predictions").rows}
    assert "email" not in columns
    assert "no secret key" in caplog.text


def test_pii_hash_without_a_secret_is_a_query_error(root: Path) -> None:
    from ferryman.errors import QueryError

    with pytest.raises(QueryError, match="FERRYMAN_SECRET_KEY"):
        LogStore(root=root).query("SELECT pii_hash('x')")


def test_redaction_of_a_numeric_column_stores_text() -> None:
    redacted = apply_action(pa.array(np.array([5551234567, 42])), PrivacyAction.REDACT, None)

    assert redacted is not None
    assert redacted.to_pylist() == ["5551234567", "42"]


def test_nothing_in_log_messages_quotes_input_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    writer = CaptureWriter(root=blocker / "logs", secret=SECRET)
    with caplog.at_level(logging.DEBUG):
        _planted_requests(writer)
        writer.flush()

    assert writer.records_lost == 5
    assert caplog.records
    for secret in PLANTED:
        assert secret not in caplog.text
    assert not re.search(r"@example\.com", caplog.text)


def test_a_policy_survives_pickling() -> None:
    import pickle

    policy = PrivacyPolicy.from_mapping({"email": "hash", "note": "redact"})

    copy = pickle.loads(pickle.dumps(policy))

    assert copy == policy and copy.action("email") is PrivacyAction.HASH
