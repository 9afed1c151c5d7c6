"""Protocol codecs: request bodies in, validated-ready batches out, and predictions back.

One module per protocol, each a set of pure functions with no I/O and no HTTP:

- :mod:`~ferryman.serving.codecs.native`: Ferryman's own JSON (``instances`` or
  ``columns`` + ``data``).
- :mod:`~ferryman.serving.codecs.oip_v2`: the Open Inference Protocol V2 (KServe, Triton)
  with JSON tensors.
- :mod:`~ferryman.serving.codecs.mlflow`: the MLflow scoring protocol (``dataframe_split``,
  ``dataframe_records``, ``instances``, ``inputs``, CSV).

Every codec produces a :class:`DecodedBatch` that goes through the one validator,
:meth:`InputSchema.validate`, before a model sees it.
"""

from __future__ import annotations

from ferryman.serving.codecs.base import DecodedBatch, InputSchema, OutputLayout

__all__ = ["DecodedBatch", "InputSchema", "OutputLayout"]
