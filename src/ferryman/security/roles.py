"""Roles and the permissions each one grants: one literal table, no inheritance logic.

Each role can do everything the role to its left can, and more:

===================  ======  =========  ========  =====  ==================================
permission           viewer  predictor  deployer  admin  allows
===================  ======  =========  ========  =====  ==================================
``read``             yes     yes        yes       yes    GET control plane: models, versions,
                                                         endpoints, rollouts, drift, audit
``read_metrics``     yes     yes        yes       yes    GET ``/metrics``
``predict``          -       yes        yes       yes    data plane: predict, OIP ``infer``,
                                                         MLflow ``invocations``, feedback
``read_logs``        -       -          yes       yes    read and export prediction records
                                                         (inputs may hold personal data)
``manage_models``    -       -          yes       yes    register versions, set aliases,
                                                         tags, status
``manage_endpoints`` -       -          yes       yes    create, update, delete endpoints
``deploy``           -       -          yes       yes    start, advance, promote, pause,
                                                         abort, roll back rollouts
``manage_logs``      -       -          -         yes    erase prediction records (right to
                                                         erasure)
``manage_tokens``    -       -          -         yes    create, list, revoke API tokens
===================  ======  =========  ========  =====  ==================================

A token may also be scoped to some endpoints; :meth:`ferryman.security.Principal.can`
applies that scope on top of this table: a scoped token keeps ``read`` and
``read_metrics`` everywhere, and every other permission only for its endpoints.
"""

from __future__ import annotations

from enum import StrEnum

from ferryman.errors import InvalidInputError


class Role(StrEnum):
    """What an API token's holder may do; see the module's table."""

    ADMIN = "admin"
    DEPLOYER = "deployer"
    PREDICTOR = "predictor"
    VIEWER = "viewer"

    @property
    def permissions(self) -> frozenset[Permission]:
        """The permissions this role grants (its row of :data:`ROLE_PERMISSIONS`)."""
        return ROLE_PERMISSIONS[self]


class Permission(StrEnum):
    """One kind of action the server authorises; see the module's table."""

    READ = "read"
    READ_METRICS = "read_metrics"
    PREDICT = "predict"
    READ_LOGS = "read_logs"
    MANAGE_MODELS = "manage_models"
    MANAGE_ENDPOINTS = "manage_endpoints"
    DEPLOY = "deploy"
    MANAGE_LOGS = "manage_logs"
    MANAGE_TOKENS = "manage_tokens"


_P = Permission

#: Permissions that change nothing and concern no single endpoint: the only ones an
#: endpoint-scoped token has without naming one of its endpoints.
UNSCOPED_PERMISSIONS: frozenset[Permission] = frozenset({_P.READ, _P.READ_METRICS})

#: The permissions of each role, written out in full so the table reads as the policy.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({_P.READ, _P.READ_METRICS}),
    Role.PREDICTOR: frozenset({_P.READ, _P.READ_METRICS, _P.PREDICT}),
    Role.DEPLOYER: frozenset(
        {
            _P.READ,
            _P.READ_METRICS,
            _P.PREDICT,
            _P.READ_LOGS,
            _P.MANAGE_MODELS,
            _P.MANAGE_ENDPOINTS,
            _P.DEPLOY,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}


def parse_role(value: str) -> Role:
    """Return the role named ``value``.

    Raises:
        InvalidInputError: No role has that name; the message lists the roles.
    """
    try:
        return Role(value)
    except ValueError:
        names = ", ".join(sorted(r.value for r in Role))
        raise InvalidInputError(f"Unknown role {value!r}. Available: {names}") from None


__all__ = ["ROLE_PERMISSIONS", "UNSCOPED_PERMISSIONS", "Permission", "Role", "parse_role"]
