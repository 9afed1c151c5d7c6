"""Signatures: what a model version accepts and returns, enforced on every prediction.

A *signature* lists a version's input columns (name, type, nullability, training range
and categories) and its output (labels, class probabilities or values). It is inferred
from the training data when the version is registered (:func:`infer_signature`),
stored as JSON with the version (:meth:`Signature.to_dict`), editable by users
(:meth:`Signature.from_dict`), and applied to every batch on every prediction path by
the one validator, :meth:`Signature.validate`. Values outside the training range and
unseen categories are accepted; :func:`count_out_of_range` counts them for monitoring.

A *reference profile* (:func:`build_profile`) keeps compact statistics of the training
features and predictions (quantiles, quantile-binned histograms, category
frequencies) and never raw rows; drift detectors use it as their baseline.
"""

from __future__ import annotations

from ferryman.signature._dtypes import ColumnDType
from ferryman.signature._inference import MAX_CATEGORIES, MAX_CLASSES, infer_signature
from ferryman.signature._profile import (
    MAX_PROFILE_CATEGORIES,
    CategoricalProfile,
    Histogram,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)
from ferryman.signature._ranges import count_out_of_range
from ferryman.signature._specs import ColumnSpec, OutputSpec, Signature, TensorSpec

__all__ = [
    "MAX_CATEGORIES",
    "MAX_CLASSES",
    "MAX_PROFILE_CATEGORIES",
    "CategoricalProfile",
    "ColumnDType",
    "ColumnSpec",
    "Histogram",
    "NumericProfile",
    "OutputSpec",
    "ReferenceProfile",
    "Signature",
    "TensorSpec",
    "build_profile",
    "count_out_of_range",
    "infer_signature",
]
