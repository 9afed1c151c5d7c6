"""The model registry: versioning and governance of models.

A *model* (``churn``) has numbered, immutable *versions* (``churn/3``): an artifact plus
its flavor, signature, reference profile, metrics, params, lineage and status. *Aliases*
(``churn@production``) are movable names for versions, and every move is kept so any past
resolution can be answered. Every change is recorded in a hash-chained audit log.
"""

from __future__ import annotations

from ferryman.registry._records import AliasEvent, ModelInfo, VersionInfo, VersionStatus
from ferryman.registry._refs import ModelRef
from ferryman.registry.audit import AuditEntry, AuditProblem, AuditReport
from ferryman.registry.model import Model
from ferryman.registry.registry import Registry

__all__ = [
    "AliasEvent",
    "AuditEntry",
    "AuditProblem",
    "AuditReport",
    "Model",
    "ModelInfo",
    "ModelRef",
    "Registry",
    "VersionInfo",
    "VersionStatus",
]
