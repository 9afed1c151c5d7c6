"""Every public Ferryman exception, under one root class.

Each error also inherits the built-in exception it refines, so existing handlers keep
working: ``except LookupError`` still catches :class:`ModelNotFoundError`. Each class has
a stable ``code`` that the HTTP gateway and the CLI's ``--json`` output carry.
"""

from __future__ import annotations


class FerrymanError(Exception):
    """Root of every error Ferryman raises on purpose."""

    code: str = "ferryman_error"


class ConfigurationError(FerrymanError, ValueError):
    """A setting is missing or has a value Ferryman cannot use."""

    code = "configuration_error"


class MissingDependencyError(FerrymanError, ImportError):
    """An optional dependency needed by a feature is not installed."""

    code = "missing_dependency"

    def __init__(self, package: str, *, feature: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the package '{package}', which is not installed. "
            f"Install it with: pip install 'ferryman[{extra}]'"
        )
        self.package = package
        self.feature = feature
        self.extra = extra


class StoreUnavailableError(FerrymanError, ConnectionError):
    """The metadata store (database) or artifact store cannot be reached."""

    code = "store_unavailable"


class NotFoundError(FerrymanError, LookupError):
    """Base class for anything looked up by name that does not exist."""

    code = "not_found"


class ModelNotFoundError(NotFoundError):
    """No registered model has the given name."""

    code = "model_not_found"


class VersionNotFoundError(NotFoundError):
    """The model exists but not the requested version."""

    code = "version_not_found"


class AliasNotFoundError(NotFoundError):
    """The model exists but has no alias of that name (or had none at that time)."""

    code = "alias_not_found"


class ArtifactNotFoundError(NotFoundError, FileNotFoundError):
    """The artifact store holds no blob with the expected hash."""

    code = "artifact_not_found"


class AlreadyExistsError(FerrymanError, ValueError):
    """Something with that name already exists."""

    code = "already_exists"


class InvalidReferenceError(FerrymanError, ValueError):
    """A model reference is not of the form ``name``, ``name/3`` or ``name@alias``."""

    code = "invalid_reference"


class InvalidInputError(FerrymanError, ValueError):
    """An argument or a piece of data does not have the expected value or shape."""

    code = "invalid_input"


class UnsupportedModelError(FerrymanError, TypeError):
    """No flavor knows how to save the given model object."""

    code = "unsupported_model"


class UntrustedArtifactError(FerrymanError, PermissionError):
    """Loading would execute code from an artifact that was not marked as trusted."""

    code = "untrusted_artifact"


class ArtifactIntegrityError(FerrymanError, ValueError):
    """An artifact's bytes do not hash to the value recorded in the registry."""

    code = "artifact_integrity"


class SignatureInferenceError(FerrymanError, ValueError):
    """A signature could not be inferred from the given training data."""

    code = "signature_inference"


class SchemaValidationError(FerrymanError, ValueError):
    """Input data does not match a version's signature.

    Attributes:
        column: The offending column, or ``None`` when the problem is the whole batch.
        row: The zero-based row index of the first offending value, or ``None``.
        expected: What the signature expects there, in words.
    """

    code = "schema_validation"

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        row: int | None = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(message)
        self.column = column
        self.row = row
        self.expected = expected


class InvalidTransitionError(FerrymanError, ValueError):
    """A status change is not allowed from the current status, or not by this person."""

    code = "invalid_transition"


class ImmutableFieldError(FerrymanError, AttributeError):
    """An attempt to change a field of a version that is immutable once registered."""

    code = "immutable_field"


class PredictionError(FerrymanError, RuntimeError):
    """The model itself failed while predicting on valid input."""

    code = "prediction_error"


class NotFittedError(FerrymanError, AttributeError):
    """A component that learns from data was used before ``fit`` was called."""

    code = "not_fitted"


class EndpointNotFoundError(NotFoundError):
    """No serving endpoint has the given name."""

    code = "endpoint_not_found"


class TokenNotFoundError(NotFoundError):
    """No API token has the given name or id."""

    code = "token_not_found"


class MalformedRequestError(FerrymanError, ValueError):
    """A request body cannot be decoded for its protocol.

    Malformed JSON, a missing or unexpected field, a tensor whose shape, datatype or
    element count is wrong: the client's mistake, answered with a 4xx.
    """

    code = "malformed_request"


class PayloadTooLargeError(FerrymanError, ValueError):
    """A request body is larger than the server's configured limit."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(FerrymanError, ValueError):
    """A request body has a content type the protocol does not accept."""

    code = "unsupported_media_type"


class EndpointNotReadyError(FerrymanError, RuntimeError):
    """The endpoint exists but cannot predict yet (its model is loading or failed to load).

    Attributes:
        retry_after: Seconds after which trying again is reasonable.
    """

    code = "endpoint_not_ready"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PredictionTimeoutError(FerrymanError, TimeoutError):
    """A prediction took longer than the endpoint's timeout."""

    code = "prediction_timeout"


class DriftMethodNotFoundError(NotFoundError):
    """No drift test or streaming detector has the given name; the message lists them."""

    code = "drift_method_not_found"


class UncalibratedModelWarning(FerrymanError, UserWarning):
    """A model's probabilities are too poorly calibrated for a performance estimate.

    Confidence-based performance estimation (CBPE) assumes that a predicted probability
    of 0.8 is right 80 % of the time; this warning says the reference data contradicts it.
    """

    code = "uncalibrated_model"


class UnknownMetricError(InvalidInputError):
    """A windowed metric name is not in the monitoring catalogue, or lacks a required label.

    The message lists the catalogue (or the labels the metric needs).
    """

    code = "unknown_metric"


class RolloutNotFoundError(NotFoundError):
    """No rollout matches: the endpoint has none, or none is active."""

    code = "rollout_not_found"


class InvalidExpressionError(InvalidInputError):
    """A gate or alert condition is not well formed.

    The message names the column (1-based) and what was expected there.

    Attributes:
        expression: The text that failed to parse.
        column: The 1-based column of the offending character.
    """

    code = "invalid_expression"

    def __init__(self, message: str, *, expression: str, column: int) -> None:
        super().__init__(message)
        self.expression = expression
        self.column = column


class AlertRuleNotFoundError(NotFoundError):
    """No alert rule has the given name."""

    code = "alert_rule_not_found"


class QueryError(InvalidInputError):
    """A query over the prediction log was rejected: DuckDB's message, or not a single SELECT.

    The message is DuckDB's own (a syntax error, an unknown column, a file outside the
    query's scope) or says which statements are allowed.
    """

    code = "invalid_query"


class RecordNotFoundError(NotFoundError):
    """No captured prediction has the given request id (on that endpoint)."""

    code = "record_not_found"


__all__ = [
    "AlertRuleNotFoundError",
    "AliasNotFoundError",
    "AlreadyExistsError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ConfigurationError",
    "DriftMethodNotFoundError",
    "EndpointNotFoundError",
    "EndpointNotReadyError",
    "FerrymanError",
    "ImmutableFieldError",
    "InvalidExpressionError",
    "InvalidInputError",
    "InvalidReferenceError",
    "InvalidTransitionError",
    "MalformedRequestError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NotFittedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PredictionError",
    "PredictionTimeoutError",
    "QueryError",
    "RecordNotFoundError",
    "RolloutNotFoundError",
    "SchemaValidationError",
    "SignatureInferenceError",
    "StoreUnavailableError",
    "TokenNotFoundError",
    "UncalibratedModelWarning",
    "UnknownMetricError",
    "UnsupportedMediaTypeError",
    "UnsupportedModelError",
    "UntrustedArtifactError",
    "VersionNotFoundError",
]
