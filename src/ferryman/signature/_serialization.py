"""Build frozen pydantic models from user-editable JSON, with errors that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import pydantic

from ferryman.errors import InvalidInputError

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def model_from_dict(model: type[ModelT], data: object, *, what: str) -> ModelT:
    """Validate a JSON-decoded object into ``model``.

    Args:
        model: The pydantic model class to build.
        data: A JSON object as decoded by :func:`json.loads`.
        what: What the object describes, for the message ("signature").

    Returns:
        The model instance.

    Raises:
        InvalidInputError: ``data`` is not a JSON object, or a field is missing, has an
            unknown name or an invalid value; the message names the field path
            (for example ``columns.2.dtype``).
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"Invalid {what}: expected a JSON object, got {type(data).__name__}."
        )
    try:
        return model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise InvalidInputError(f"Invalid {what}: {_describe(exc)}") from exc


def _describe(exc: pydantic.ValidationError) -> str:
    """Summarise a pydantic error as ``field.path: problem (got value)``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] not in {"missing", "value_error"}:
        message = f"{message} (got {first['input']!r})"
    more = f" ({len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{path}: {message}{more}"
