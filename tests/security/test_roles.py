"""Roles grant a fixed set of permissions; endpoint scope narrows what a token may touch."""

from __future__ import annotations

import itertools

import pytest

from ferryman.errors import InvalidInputError
from ferryman.security import Permission, Principal, Role, parse_role

P = Permission

# The policy, written out cell by cell: (viewer, predictor, deployer, admin).
MATRIX: dict[Permission, tuple[bool, bool, bool, bool]] = {
    P.READ: (True, True, True, True),
    P.READ_METRICS: (True, True, True, True),
    P.PREDICT: (False, True, True, True),
    P.READ_LOGS: (False, False, True, True),
    P.MANAGE_MODELS: (False, False, True, True),
    P.MANAGE_ENDPOINTS: (False, False, True, True),
    P.DEPLOY: (False, False, True, True),
    P.MANAGE_LOGS: (False, False, False, True),
    P.MANAGE_TOKENS: (False, False, False, True),
}
ROLES = (Role.VIEWER, Role.PREDICTOR, Role.DEPLOYER, Role.ADMIN)
CASES = [
    pytest.param(role, permission, allowed[i], id=f"{role}-{permission}")
    for permission, allowed in MATRIX.items()
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("role", "permission", "allowed"), CASES)
def test_role_grants_exactly_the_permissions_in_the_matrix(
    role: Role, permission: Permission, allowed: bool
) -> None:
    assert (permission in role.permissions) is allowed
    assert Principal("t", role).can(permission) is allowed


def test_matrix_covers_every_permission_and_role() -> None:
    assert set(MATRIX) == set(Permission)
    assert set(ROLES) == set(Role)


def test_each_role_can_do_everything_the_previous_one_can() -> None:
    for weaker, stronger in itertools.pairwise(ROLES):
        assert weaker.permissions < stronger.permissions


SCOPED = Principal("app", Role.DEPLOYER, frozenset({"churn", "fraud"}))
SCOPE_CASES = {
    "predict-on-own-endpoint": (P.PREDICT, "churn", True),
    "predict-on-other-endpoint": (P.PREDICT, "ads", False),
    "deploy-on-own-endpoint": (P.DEPLOY, "fraud", True),
    "manage-endpoint-elsewhere": (P.MANAGE_ENDPOINTS, "ads", False),
    "read-anything": (P.READ, None, True),
    "read-metrics-anything": (P.READ_METRICS, None, True),
    "read-other-endpoint": (P.READ, "ads", False),
    "manage-models-needs-an-endpoint": (P.MANAGE_MODELS, None, False),
    "deploy-needs-an-endpoint": (P.DEPLOY, None, False),
    "role-still-limits": (P.MANAGE_TOKENS, "churn", False),
}


@pytest.mark.parametrize(
    ("permission", "endpoint", "allowed"), SCOPE_CASES.values(), ids=SCOPE_CASES.keys()
)
def test_scoped_principal_acts_only_on_its_endpoints(
    permission: Permission, endpoint: str | None, allowed: bool
) -> None:
    assert SCOPED.can(permission, endpoint) is allowed


def test_unscoped_principal_may_act_on_any_endpoint() -> None:
    assert Principal("ops", Role.DEPLOYER).can(P.DEPLOY, "anything")


def test_parse_role_accepts_each_role_name() -> None:
    assert [parse_role(r.value) for r in Role] == list(Role)


def test_unknown_role_lists_the_valid_ones() -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"Unknown role 'root'\. Available: admin, deployer, predictor, viewer",
    ):
        parse_role("root")
