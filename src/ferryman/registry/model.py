"""A loaded model version: validates input against its signature, then predicts."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ferryman.errors import InvalidInputError
from ferryman.flavors.base import LoadedModel, ModelInput, Prediction
from ferryman.registry._records import VersionInfo
from ferryman.signature import Signature


class Model:
    """A registered version, loaded and ready to predict.

    Every call validates its input with the version's signature (when it has one) before
    the model sees it, exactly as the server and batch jobs do.

    Args:
        info: The version's registry record.
        model: The flavor's loaded model.
        signature: The version's signature, or ``None`` when it was registered without X.
        unknown_columns: Reject or ignore input columns the signature does not know.
    """

    def __init__(
        self,
        *,
        info: VersionInfo,
        model: LoadedModel,
        signature: Signature | None,
        unknown_columns: Literal["reject", "ignore"] = "reject",
    ) -> None:
        self.info = info
        self.model = model
        self.signature = signature
        self.unknown_columns = unknown_columns

    def __repr__(self) -> str:
        return f"<ferryman.Model {self.info.ref} flavor={self.info.flavor}>"

    @property
    def ref(self) -> str:
        """The canonical reference, ``name/N``."""
        return self.info.ref

    def validate(self, data: Any) -> ModelInput:
        """Validate and convert input the way every prediction path does.

        Args:
            data: A DataFrame, pyarrow Table, list of records, dict of columns or ndarray
                (model payload, any of the forms the signature accepts).

        Raises:
            SchemaValidationError: The data does not match the signature; the message
                names the column, the row and what was expected.
        """
        if self.signature is None:
            if isinstance(data, ModelInput):
                return data
            return np.asarray(data)
        return self.signature.validate(data, unknown_columns=self.unknown_columns)

    def predict_batch(self, data: Any) -> Prediction:
        """Validate ``data`` and return predictions with probabilities where available."""
        return self.model.predict(self.validate(data))

    def predict(self, data: Any) -> np.ndarray:
        """Validate ``data`` and return one prediction per row."""
        return self.predict_batch(data).predictions

    def predict_proba(self, data: Any) -> np.ndarray:
        """Validate ``data`` and return class probabilities, one row per input row.

        Raises:
            InvalidInputError: The model has no probabilities (e.g. a regressor).
        """
        prediction = self.predict_batch(data)
        if prediction.probabilities is None:
            raise InvalidInputError(
                f"Model {self.info.ref} ({self.info.flavor}) has no class probabilities; "
                "use predict()"
            )
        return prediction.probabilities

    @property
    def classes(self) -> list[Any] | None:
        """Class labels in the order of ``predict_proba`` columns, when known."""
        output = self.signature.output if self.signature is not None else None
        if output is not None and output.classes:
            return list(output.classes)
        return None
