"""A registry whose artifacts live on a real S3 API (moto's server mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from ferryman.config import Settings
from ferryman.errors import ArtifactIntegrityError
from ferryman.registry import Registry


@pytest.mark.s3
def test_registry_on_s3_registers_loads_and_refuses_tampering(
    s3_server: str,
    s3_bucket: str,
    s3_client: Any,
    tmp_path: Path,
    classifier: Pipeline,
    cancer: tuple[pd.DataFrame, Any],
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        artifact_uri=f"s3://{s3_bucket}/ferryman",
        artifact_storage_options={
            "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
            "key": "testing",
            "secret": "testing",
        },
        user="alice",
    )
    X, y = cancer
    with Registry.from_settings(settings) as registry:
        info = registry.register(classifier, name="churn", X=X, y=y)
        np.testing.assert_array_equal(
            registry.load("churn").predict(X.head()), classifier.predict(X.head())
        )
        key = f"ferryman/sha256/{info.artifact_sha256[:2]}/{info.artifact_sha256[2:]}"
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"not the model")
        for cached in (tmp_path / "home" / "cache").rglob(info.artifact_sha256):
            cached.unlink()
        with pytest.raises(ArtifactIntegrityError, match="'churn' version 1"):
            registry.load("churn/1")
