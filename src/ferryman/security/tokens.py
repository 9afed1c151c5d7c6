"""API tokens: create, list, revoke, and authenticate on every request.

A token reads ``fm_<id>_<secret>``: ``id`` is 12 hex characters that name the token
publicly (safe to log), ``secret`` is 32 random bytes from :mod:`secrets`, base64url
encoded (43 characters). The plain text is returned once, by :meth:`TokenService.create`,
and never stored or logged: the table keeps the SHA-256 of the whole token text.

Why a plain SHA-256 and not a slow password hash (bcrypt, scrypt, Argon2): slow hashes
protect *low-entropy* secrets, which an attacker holding the hashes could guess. A
256-bit random secret cannot be guessed at any hashing speed, so a slow hash would only
add milliseconds to every request. Each secret is unique, so no salt is needed either.
Hashes are compared with :func:`hmac.compare_digest`, in constant time.

Hot path: :meth:`TokenService.authenticate` keeps, per process, a small cache of token
records keyed by the public id, each trusted for ``cache_ttl`` seconds (default 2) before
it is read again. A cache hit costs a regex match, one SHA-256 and a dictionary lookup (a
few microseconds); the database is read at most once per token and TTL. Consequences: a
revocation made by another process takes effect within ``cache_ttl`` seconds (at once
in the process that revoked it), while expiry is checked against the clock on every call
and is exact. Unknown ids are cached too, so a client repeating a deleted token does not
hit the database on every request. ``last_used_at`` is recorded in memory and written by
:meth:`TokenService.flush_last_used`, which a server calls periodically, off the hot
path. One service may be shared by threads: the cache holds immutable records, and a
race between two threads costs at most one extra read of the store.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from ferryman.errors import (
    AlreadyExistsError,
    InvalidInputError,
    StoreUnavailableError,
    TokenNotFoundError,
)
from ferryman.registry import audit
from ferryman.registry._refs import NAME_RE
from ferryman.security.roles import UNSCOPED_PERMISSIONS, Permission, Role, parse_role
from ferryman.store import Database
from ferryman.store._tables import APITokenRow, utcnow

_PREFIX = "fm"
_ID_BYTES = 6  # 12 hex characters: public, only needs to be unique
_SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"^fm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
#: Most token records a process caches; beyond it, stale ones are dropped (then all).
_CACHE_LIMIT = 10_000

TokenStatus = Literal["active", "expired", "revoked"]


@dataclass(frozen=True)
class Principal:
    """Who an authenticated request acts as: a token's name, role and endpoint scope.

    Attributes:
        name: The token's name, e.g. ``ci-deployer``.
        role: Its role.
        endpoints: The endpoints it is limited to, or ``None`` for all endpoints.
    """

    name: str
    role: Role
    endpoints: frozenset[str] | None = None

    def can(self, permission: Permission, endpoint: str | None = None) -> bool:
        """Whether this principal may do ``permission`` (on ``endpoint``, if given).

        Pass ``endpoint`` whenever the action concerns one endpoint. A token scoped to
        some endpoints keeps ``read`` and ``read_metrics`` everywhere; every other
        permission it has only when ``endpoint`` is one of its endpoints.

        >>> p = Principal("app", Role.PREDICTOR, frozenset({"churn"}))
        >>> p.can(Permission.PREDICT, "churn"), p.can(Permission.PREDICT, "fraud")
        (True, False)
        >>> p.can(Permission.READ), p.can(Permission.DEPLOY, "churn")
        (True, False)
        """
        if permission not in self.role.permissions:
            return False
        if self.endpoints is None:
            return True
        if endpoint is None:
            return permission in UNSCOPED_PERMISSIONS
        return endpoint in self.endpoints


@dataclass(frozen=True)
class TokenInfo:
    """An API token's metadata; never its secret.

    Attributes:
        id: The public id, the part after ``fm_`` in the token text.
        name: Unique name, e.g. ``ci-deployer``.
        role: Its role.
        endpoints: The endpoints it is limited to (sorted), or ``None`` for all.
        prefix: How to recognise the token in listings: ``fm_<id>``.
        created_by: Who created it.
        created_at: When (UTC).
        expires_at: When it stops working (UTC), or ``None`` for never.
        revoked_at: When it was revoked (UTC), or ``None``.
        last_used_at: Last successful use as of the last flush (UTC), or ``None``.
    """

    id: str
    name: str
    role: Role
    endpoints: tuple[str, ...] | None
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: APITokenRow) -> TokenInfo:
        """Build the view of one ``api_tokens`` row."""
        return cls(
            id=row.id,
            name=row.name,
            role=Role(row.role),
            endpoints=tuple(sorted(row.endpoints)) if row.endpoints is not None else None,
            prefix=row.prefix,
            created_by=row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )

    def status_at(self, now: datetime) -> TokenStatus:
        """Return ``"revoked"``, ``"expired"`` or ``"active"`` as of ``now`` (aware)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (timestamps as ISO 8601)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "endpoints": list(self.endpoints) if self.endpoints is not None else None,
            "prefix": self.prefix,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


@dataclass(frozen=True, slots=True)
class _Cached:
    fetched_at: datetime
    digest: bytes | None  # None: no token has this id
    principal: Principal | None
    expires_at: datetime | None
    revoked: bool


class TokenService:
    """Create, list and revoke API tokens, and authenticate requests with them.

    Args:
        database: The metadata store (opened on first use).
        user: Who is acting; recorded in ``created_by`` and the audit log.
        cache_ttl: Seconds a token record read from the store is trusted before it is
            read again (see the module docstring); 0 reads the store on every call.
        clock: Returns the current time, timezone-aware; injectable for tests.
    """

    def __init__(
        self,
        *,
        database: Database,
        user: str,
        cache_ttl: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.user = user
        self.cache_ttl = cache_ttl
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._last_used: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return (
            f"TokenService(database={self.database!r}, user={self.user!r}, "
            f"cache_ttl={self.cache_ttl!r})"
        )

    def create(
        self,
        name: str,
        role: Role | str,
        *,
        endpoints: Sequence[str] | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token; return its metadata and its text, which is never shown again.

        Args:
            name: Unique name: 1-200 letters, digits, ``.``, ``_`` or ``-``.
            role: ``admin``, ``deployer``, ``predictor`` or ``viewer``.
            endpoints: Limit the token to these endpoints (they need not exist yet);
                ``None`` for all endpoints.
            expires_in: Lifetime from now (positive), or ``None`` for no expiry.

        Raises:
            InvalidInputError: A bad name, role, endpoint list or lifetime.
            AlreadyExistsError: A token with this name exists (revoked ones included).
        """
        _check_name(name, "token name")
        checked_role = role if isinstance(role, Role) else parse_role(role)
        scope = _check_endpoints(endpoints)
        if expires_in is not None and (
            not isinstance(expires_in, timedelta) or expires_in <= timedelta(0)
        ):
            raise InvalidInputError(
                f"Invalid expires_in {expires_in!r}: expected a positive duration, or None "
                "for a token that never expires"
            )
        now = self.clock()
        try:
            expires_at = now + expires_in if expires_in is not None else None
        except OverflowError:
            raise InvalidInputError(
                f"Invalid expires_in {expires_in!r}: too long (expiry past year 9999)"
            ) from None
        token_id = secrets.token_hex(_ID_BYTES)
        text = f"{_PREFIX}_{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        row = APITokenRow(
            id=token_id,
            name=name,
            role=checked_role.value,
            endpoints=scope,
            secret_sha256=hashlib.sha256(text.encode()).hexdigest(),
            prefix=f"{_PREFIX}_{token_id}",
            created_by=self.user,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
        )
        try:
            with self.database.write() as session:
                if session.scalar(select(APITokenRow.id).where(APITokenRow.name == name)):
                    raise AlreadyExistsError(
                        f"API token {name!r} already exists; choose another name "
                        "(names stay taken after revocation)"
                    )
                session.add(row)
                session.flush()
                info = TokenInfo.from_row(row)
                self._audit(session, "token.create", name, None, _state(info))
        except IntegrityError as exc:  # a concurrent create with the same name
            raise AlreadyExistsError(f"API token {name!r} already exists") from exc
        self._cache.pop(token_id, None)
        return info, text

    def list(self) -> builtins.list[TokenInfo]:
        """Return every token (revoked and expired ones too), sorted by name."""
        with self.database.read() as session:
            rows = session.scalars(select(APITokenRow).order_by(APITokenRow.name))
            return [TokenInfo.from_row(row) for row in rows]

    def revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke a token by name (or public id); revoking it again changes nothing.

        Takes effect at once in this process and within ``cache_ttl`` seconds in others.

        Raises:
            TokenNotFoundError: No token has this name or id.
        """
        with self.database.write() as session:
            row = session.scalars(
                select(APITokenRow).where(APITokenRow.name == name_or_id).with_for_update()
            ).one_or_none()
            if row is None:
                row = session.get(APITokenRow, name_or_id, with_for_update=True)
            if row is None:
                raise TokenNotFoundError(
                    f"No API token named {name_or_id!r} (or with that id). "
                    "List tokens with: ferryman tokens list"
                )
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                self._audit(
                    session,
                    "token.revoke",
                    row.name,
                    {"revoked_at": None},
                    {"revoked_at": row.revoked_at.isoformat()},
                )
            info = TokenInfo.from_row(row)
        self._cache.pop(info.id, None)
        return info

    def authenticate(self, token_text: str) -> Principal | None:
        """Return who ``token_text`` acts as, or ``None`` if it does not authenticate.

        ``None`` for malformed text, an unknown id, a wrong secret, a revoked or an
        expired token. Reads the store at most once per token id and ``cache_ttl``.

        Raises:
            StoreUnavailableError: The token had to be read and the store did not answer.
        """
        match = _TOKEN_RE.match(token_text)
        if match is None:
            return None
        token_id = match[1]
        now = self.clock()
        entry = self._cache.get(token_id)
        if entry is None or not 0 <= (now - entry.fetched_at).total_seconds() < self.cache_ttl:
            entry = self._fetch(token_id, now)
        digest = hashlib.sha256(token_text.encode()).digest()
        if entry.digest is None or not hmac.compare_digest(digest, entry.digest):
            return None
        if entry.revoked or (entry.expires_at is not None and now >= entry.expires_at):
            return None
        self._last_used[token_id] = now
        return entry.principal

    def flush_last_used(self) -> int:
        """Write the last-use times recorded by :meth:`authenticate` since the last flush.

        Call it periodically (e.g. every minute) and at shutdown, off the request path.

        Returns:
            How many tokens' times were recorded.
        """
        pending, self._last_used = self._last_used, {}
        if not pending:
            return 0
        with self.database.write() as session:
            for token_id, at in sorted(pending.items()):
                session.execute(
                    update(APITokenRow)
                    .where(
                        APITokenRow.id == token_id,
                        or_(APITokenRow.last_used_at.is_(None), APITokenRow.last_used_at < at),
                    )
                    .values(last_used_at=at)
                )
        return len(pending)

    def has_any(self) -> bool:
        """Whether any token was ever created (revoked and expired ones count).

        Revoking every token therefore never turns authentication off.
        """
        with self.database.read() as session:
            return session.scalar(select(APITokenRow.id).limit(1)) is not None

    def _fetch(self, token_id: str, now: datetime) -> _Cached:
        try:
            with self.database.read() as session:
                row = session.get(APITokenRow, token_id)
                entry = _Cached(now, None, None, None, revoked=False)
                if row is not None:
                    principal = Principal(
                        name=row.name,
                        role=Role(row.role),
                        endpoints=frozenset(row.endpoints) if row.endpoints is not None else None,
                    )
                    entry = _Cached(
                        now,
                        bytes.fromhex(row.secret_sha256),
                        principal,
                        row.expires_at,
                        revoked=row.revoked_at is not None,
                    )
        except DBAPIError as exc:
            raise StoreUnavailableError(
                f"Cannot check API token fm_{token_id}: the metadata store did not answer"
            ) from exc
        if len(self._cache) >= _CACHE_LIMIT:
            self._evict(now)
        self._cache[token_id] = entry
        return entry

    def _evict(self, now: datetime) -> None:
        stale = [
            key
            for key, entry in self._cache.items()
            if not 0 <= (now - entry.fetched_at).total_seconds() < self.cache_ttl
        ]
        for key in stale:
            self._cache.pop(key, None)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()

    def _audit(
        self,
        session: Session,
        action: str,
        name: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        audit.append(
            session,
            actor=self.user,
            action=action,
            entity_type="token",
            # ':' cannot occur in model names: token entries never mix with a model's.
            entity=f"token:{name}",
            before=before,
            after=after,
        )


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInputError(
            f"Invalid {what} {name!r}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def _check_endpoints(endpoints: Sequence[str] | None) -> list[str] | None:
    if endpoints is None:
        return None
    if isinstance(endpoints, str) or not isinstance(endpoints, Sequence):
        raise InvalidInputError(
            f"Invalid endpoints {endpoints!r}: expected a list of endpoint names, or None "
            "for all endpoints"
        )
    if not endpoints:
        raise InvalidInputError(
            "Invalid endpoints []: a token limited to no endpoint could never predict; "
            "give at least one endpoint, or None for all endpoints"
        )
    for endpoint in endpoints:
        _check_name(endpoint, "endpoint name")
    return sorted(set(endpoints))


def _state(info: TokenInfo) -> dict[str, Any]:
    # What the audit log keeps of a new token: never its text or its hash.
    return {
        "id": info.id,
        "role": info.role.value,
        "endpoints": list(info.endpoints) if info.endpoints is not None else None,
        "expires_at": info.expires_at.isoformat() if info.expires_at is not None else None,
    }


__all__ = ["Principal", "TokenInfo", "TokenService", "TokenStatus"]
