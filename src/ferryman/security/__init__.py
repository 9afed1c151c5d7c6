"""Security: who may call Ferryman, and what they may do.

Every request to a server carries an API token (``Authorization: Bearer fm_…``). A
token has a *role* (``admin``, ``deployer``, ``predictor``, ``viewer``), which grants a
fixed set of *permissions* (see :mod:`ferryman.security.roles` for the table), and may be
limited to some endpoints. Tokens are stored hashed and shown in plain text only once,
when created. :meth:`TokenService.authenticate` turns a token into a :class:`Principal`,
and :meth:`Principal.can` answers whether it may do something.
"""

from __future__ import annotations

from ferryman.security.roles import Permission, Role, parse_role
from ferryman.security.tokens import Principal, TokenInfo, TokenService, TokenStatus

__all__ = [
    "Permission",
    "Principal",
    "Role",
    "TokenInfo",
    "TokenService",
    "TokenStatus",
    "parse_role",
]
