"""The skops trust check, shared by the sklearn and mlflow flavors.

skops refuses to load types outside its default allow-list unless the caller names them.
Ferryman asks the user to name them at save time, records that list in the flavor
metadata, and at load passes exactly that list: the artifact never vouches for itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferryman.errors import InvalidInputError, UntrustedArtifactError
from ferryman.flavors._options import string_list

#: The metadata key holding the types that may be loaded beyond skops' defaults.
TRUSTED_TYPES_KEY = "trusted_types"

#: Modules whose classes are trusted without being named: scikit-learn's own classes
#: (tree structures, histogram predictors, loss objects) run only scikit-learn's code.
#: Functions or classes from anywhere else (a FunctionTransformer's ``func``, a user's
#: transformer) still have to be named in ``trusted_types``.
IMPLICITLY_TRUSTED_MODULES = ("sklearn.",)


def check_trusted_types(file: Path, options: Mapping[str, Any]) -> list[str]:
    """Return the non-default types in a skops file, if the user trusted all of them.

    Args:
        file: A file written by ``skops.io.dump``.
        options: The save options; ``options["trusted_types"]`` lists the type names
            (such as ``"mypackage.MyTransformer"``) the user allows.

    Returns:
        The sorted type names that loading needs beyond skops' defaults, for the metadata
        (including scikit-learn's own classes, which are trusted implicitly).

    Raises:
        UntrustedArtifactError: The file holds a type that ``trusted_types`` does not list.
        InvalidInputError: ``trusted_types`` is not a list of strings.
    """
    import skops.io

    allowed = set(string_list(options.get(TRUSTED_TYPES_KEY, []), option=TRUSTED_TYPES_KEY))
    needed = sorted(set(skops.io.get_untrusted_types(file=file)))
    missing = [
        name
        for name in needed
        if name not in allowed and not name.startswith(IMPLICITLY_TRUSTED_MODULES)
    ]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise UntrustedArtifactError(
            f"The model contains types that skops does not trust by default: {listed}. "
            "Loading them runs their code. If you trust them, allow them explicitly with "
            f"options={{'trusted_types': {missing!r}}}."
        )
    return needed


def load_trusted(file: Path, meta: Mapping[str, Any]) -> object:
    """Load a skops file, allowing only the types recorded in the registry's metadata.

    Args:
        file: A file written by ``skops.io.dump``.
        meta: The flavor metadata; ``meta["trusted_types"]`` is passed to skops as is.

    Returns:
        The loaded object.

    Raises:
        UntrustedArtifactError: The file holds a type the metadata does not list.
        InvalidInputError: ``meta["trusted_types"]`` is not a list of strings.
    """
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        trusted = string_list(meta.get(TRUSTED_TYPES_KEY, []), option=TRUSTED_TYPES_KEY)
    except InvalidInputError as exc:
        raise InvalidInputError(f"Invalid flavor metadata: {exc}") from exc
    try:
        return skops.io.load(file, trusted=trusted)
    except UntrustedTypesFoundException as exc:
        raise UntrustedArtifactError(
            f"The artifact contains types that were not trusted at registration: {exc}. "
            "Register the model again with these types in options['trusted_types']."
        ) from exc
