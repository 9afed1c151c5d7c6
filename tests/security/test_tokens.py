"""API tokens: shown once, stored hashed, scoped, expiring, revocable, fast to check."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferryman.errors import AlreadyExistsError, InvalidInputError, TokenNotFoundError
from ferryman.registry import Registry
from ferryman.security import Permission, Principal, Role, TokenInfo, TokenService
from ferryman.store import Database
from ferryman.store._tables import Base

TOKEN_FORMAT = re.compile(r"^fm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def database(registry: Registry) -> Database:
    """The registry's database, so tests can read the audit log through the registry."""
    return registry.database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(database: Database, clock: Clock) -> TokenService:
    return TokenService(database=database, user="alice", clock=clock)


@pytest.fixture
def known(tokens: TokenService) -> TokenInfo:
    """An existing admin token, so that a stray match would have something to match."""
    return tokens.create("known", "admin")[0]


def _unique_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_created_token_authenticates_as_its_name_role_and_scope(tokens: TokenService) -> None:
    info, text = tokens.create("app", "predictor", endpoints=["fraud", "churn"])

    assert tokens.authenticate(text) == Principal(
        "app", Role.PREDICTOR, frozenset({"churn", "fraud"})
    )
    assert info.endpoints == ("churn", "fraud")


def test_token_text_has_the_documented_format(tokens: TokenService) -> None:
    info, text = tokens.create("app", Role.VIEWER)
    _, other = tokens.create("other", Role.VIEWER)

    assert TOKEN_FORMAT.match(text)
    assert info.prefix == f"fm_{info.id}"
    assert text.startswith(f"{info.prefix}_")
    assert other != text


def test_scoped_token_may_predict_only_on_its_endpoints(tokens: TokenService) -> None:
    _, text = tokens.create("app", "predictor", endpoints=["churn"])

    principal = tokens.authenticate(text)

    assert principal is not None
    assert principal.can(Permission.PREDICT, "churn")
    assert not principal.can(Permission.PREDICT, "fraud")


MALFORMED = {
    "empty": "",
    "prefix-only": "fm_",
    "bearer-header": "Bearer fm_0123456789ab_" + "a" * 43,
    "upper-case-id": "fm_0123456789AB_" + "a" * 43,
    "short-secret": "fm_0123456789ab_" + "a" * 42,
    "long-secret": "fm_0123456789ab_" + "a" * 44,
    "other-prefix": "xx_0123456789ab_" + "a" * 43,
    "unknown-id": "fm_0123456789ab_" + "a" * 43,
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_or_unknown_token_does_not_authenticate(tokens: TokenService, text: str) -> None:
    tokens.create("app", "admin")

    assert tokens.authenticate(text) is None


def test_token_with_a_wrong_secret_does_not_authenticate(tokens: TokenService) -> None:
    _, text = tokens.create("app", "admin")
    wrong = text[:-1] + ("A" if text[-1] != "A" else "B")

    assert tokens.authenticate(wrong) is None
    assert tokens.authenticate(text + " ") is None


@PROPERTY
@given(text=st.text(max_size=80) | st.from_regex(TOKEN_FORMAT, fullmatch=True))
def test_random_token_text_never_authenticates(
    tokens: TokenService, known: TokenInfo, text: str
) -> None:
    assert tokens.authenticate(text) is None


@PROPERTY
@given(secret=st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True))
def test_a_known_id_with_a_random_secret_never_authenticates(
    tokens: TokenService, known: TokenInfo, secret: str
) -> None:
    assert tokens.authenticate(f"fm_{known.id}_{secret}") is None


@PROPERTY
@given(
    role=st.sampled_from(Role),
    scope=st.none() | st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 400),
)
def test_created_token_authenticates_until_it_expires(
    tokens: TokenService, clock: Clock, role: Role, scope: list[str] | None, minutes: int
) -> None:
    info, text = tokens.create(
        _unique_name(), role, endpoints=scope, expires_in=timedelta(minutes=minutes)
    )
    expected = Principal(info.name, role, frozenset(scope) if scope is not None else None)

    assert tokens.authenticate(text) == expected
    clock.advance(minutes=minutes, seconds=-1)
    assert tokens.authenticate(text) == expected
    clock.advance(seconds=1)
    assert tokens.authenticate(text) is None


@PROPERTY
@given(role=st.sampled_from(Role), by_id=st.booleans())
def test_created_token_authenticates_until_it_is_revoked(
    tokens: TokenService, role: Role, by_id: bool
) -> None:
    info, text = tokens.create(_unique_name(), role)
    assert tokens.authenticate(text) is not None

    tokens.revoke(info.id if by_id else info.name)

    assert tokens.authenticate(text) is None


def test_revocation_in_another_process_takes_effect_within_the_cache_ttl(
    database: Database, clock: Clock
) -> None:
    server = TokenService(database=database, user="server", cache_ttl=2.0, clock=clock)
    admin = TokenService(database=database, user="alice", clock=clock)
    _, text = admin.create("app", "predictor")
    assert server.authenticate(text) is not None

    admin.revoke("app")

    clock.advance(seconds=1.9)
    assert server.authenticate(text) is not None  # the documented window
    clock.advance(seconds=0.1)
    assert server.authenticate(text) is None


def test_without_a_cache_revocation_elsewhere_takes_effect_at_once(
    database: Database, clock: Clock
) -> None:
    server = TokenService(database=database, user="server", cache_ttl=0, clock=clock)
    admin = TokenService(database=database, user="alice", clock=clock)
    _, text = admin.create("app", "predictor")
    assert server.authenticate(text) is not None

    admin.revoke("app")

    assert server.authenticate(text) is None


def test_secret_is_stored_nowhere_in_the_database(tokens: TokenService, database: Database) -> None:
    _, text = tokens.create("app", "admin", endpoints=["churn"])
    tokens.authenticate(text)
    tokens.flush_last_used()
    tokens.revoke("app")
    secret = text.split("_", 2)[2]

    with database.engine.connect() as conn:
        rows = [
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in conn.execute(table.select())
        ]

    assert rows
    assert not [row for row in rows if secret in row]


def test_token_is_stored_as_the_sha256_of_its_text(
    tokens: TokenService, database: Database
) -> None:
    _, text = tokens.create("app", "admin")

    with database.engine.connect() as conn:
        stored = [
            row.secret_sha256 for row in conn.execute(Base.metadata.tables["api_tokens"].select())
        ]

    assert stored == [hashlib.sha256(text.encode()).hexdigest()]


def test_list_shows_metadata_never_the_secret(tokens: TokenService, clock: Clock) -> None:
    tokens.create("b-app", "viewer")
    _, text = tokens.create("a-app", "deployer", expires_in=timedelta(days=30))

    listed = tokens.list()

    assert [t.name for t in listed] == ["a-app", "b-app"]
    assert listed[0].expires_at == clock.now + timedelta(days=30)
    assert listed[0].created_by == "alice"
    assert all(text.split("_", 2)[2] not in repr(t.to_dict()) for t in listed)


def test_status_reports_active_expired_and_revoked(tokens: TokenService, clock: Clock) -> None:
    tokens.create("active", "viewer")
    tokens.create("expiring", "viewer", expires_in=timedelta(hours=1))
    tokens.create("revoked", "viewer")
    tokens.revoke("revoked")
    clock.advance(hours=1)

    statuses = {t.name: t.status_at(clock.now) for t in tokens.list()}

    assert statuses == {"active": "active", "expiring": "expired", "revoked": "revoked"}


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "name-with-space": ({"name": "my token"}, r"Invalid token name 'my token'"),
    "unknown-role": (
        {"role": "root"},
        r"Unknown role 'root'. Available: admin, deployer, predictor, viewer",
    ),
    "no-endpoints": ({"endpoints": []}, r"give at least one endpoint, or None"),
    "endpoints-string": ({"endpoints": "churn"}, r"expected a list of endpoint names"),
    "bad-endpoint-name": ({"endpoints": ["a b"]}, r"Invalid endpoint name 'a b'"),
    "zero-lifetime": ({"expires_in": timedelta(0)}, r"expected a positive duration"),
    "negative-lifetime": ({"expires_in": timedelta(days=-1)}, r"expected a positive duration"),
    "endless-lifetime": ({"expires_in": timedelta.max}, r"too long"),
}


@pytest.mark.parametrize(("changes", "message"), INVALID.values(), ids=INVALID.keys())
def test_create_rejects_invalid_arguments(
    tokens: TokenService, changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"name": "app", "role": "viewer"} | changes

    with pytest.raises(InvalidInputError, match=message):
        tokens.create(**arguments)
    assert not tokens.has_any()


def test_token_names_stay_taken_after_revocation(tokens: TokenService) -> None:
    tokens.create("app", "viewer")
    tokens.revoke("app")

    with pytest.raises(AlreadyExistsError, match="API token 'app' already exists"):
        tokens.create("app", "viewer")


def test_revoking_an_unknown_token_raises_token_not_found(tokens: TokenService) -> None:
    with pytest.raises(TokenNotFoundError, match=r"No API token named 'nope'.*tokens list"):
        tokens.revoke("nope")


def test_revoking_twice_changes_nothing(tokens: TokenService, clock: Clock) -> None:
    tokens.create("app", "viewer")
    first = tokens.revoke("app")
    clock.advance(minutes=5)

    second = tokens.revoke("app")

    assert second.revoked_at == first.revoked_at == clock.now - timedelta(minutes=5)


def test_create_and_revoke_are_audited_without_the_secret(
    tokens: TokenService, registry: Registry
) -> None:
    info, _ = tokens.create("app", "deployer", endpoints=["churn"])
    tokens.revoke("app")
    tokens.revoke("app")

    entries = registry.audit_entries(entity="token:app")

    assert [(e.action, e.entity_type, e.actor) for e in entries] == [
        ("token.create", "token", "alice"),
        ("token.revoke", "token", "alice"),
    ]
    assert entries[0].after == {
        "id": info.id,
        "role": "deployer",
        "endpoints": ["churn"],
        "expires_at": None,
    }


def test_has_any_stays_true_once_a_token_exists(tokens: TokenService) -> None:
    assert tokens.has_any() is False

    tokens.create("app", "viewer")
    tokens.revoke("app")

    assert tokens.has_any() is True


def test_last_use_is_recorded_when_flushed(tokens: TokenService, clock: Clock) -> None:
    _, text = tokens.create("app", "viewer")
    tokens.authenticate(text)
    used_at = clock.now
    clock.advance(minutes=1)

    assert tokens.list()[0].last_used_at is None
    assert tokens.flush_last_used() == 1
    assert tokens.list()[0].last_used_at == used_at
    assert tokens.flush_last_used() == 0
