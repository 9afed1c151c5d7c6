"""The artifact store, on a local directory, fsspec's memory filesystem and a real S3 API."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferryman.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    InvalidInputError,
    MissingDependencyError,
    StoreUnavailableError,
)
from ferryman.store.artifacts import ArtifactStore, BlobRef

LABEL = "model 'churn' version 3"


@dataclass
class Backend:
    """A store plus raw access to its blobs, bypassing the store (to tamper with them)."""

    store: ArtifactStore
    read_raw: Callable[[str], bytes]
    write_raw: Callable[[str, bytes], object]
    list_blobs: Callable[[], list[str]]
    tmp_path: Path

    def reader(self) -> ArtifactStore:
        """A second store on the same URI with an empty cache, like another host's."""
        return ArtifactStore(
            uri=self.store.uri,
            storage_options=self.store.storage_options,
            cache_dir=self.tmp_path / f"reader-cache-{uuid.uuid4().hex[:8]}",
        )


def _blob_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:]}"


def _local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "artifacts"
    store = ArtifactStore(uri=str(root), cache_dir=tmp_path / "cache")
    return Backend(
        store=store,
        read_raw=lambda sha: (root / _blob_key(sha)).read_bytes(),
        write_raw=lambda sha, data: (root / _blob_key(sha)).write_bytes(data),
        list_blobs=lambda: sorted(
            str(p.relative_to(root)) for p in (root / "sha256").rglob("*") if p.is_file()
        ),
        tmp_path=tmp_path,
    )


def _memory_backend(tmp_path: Path, prefix: str) -> Backend:
    fs = fsspec.filesystem("memory")
    root = f"/{prefix}/artifacts"
    store = ArtifactStore(uri=f"memory://{prefix}/artifacts", cache_dir=tmp_path / "cache")
    return Backend(
        store=store,
        read_raw=lambda sha: bytes(fs.cat_file(f"{root}/{_blob_key(sha)}")),
        write_raw=lambda sha, data: fs.pipe_file(f"{root}/{_blob_key(sha)}", data),
        list_blobs=lambda: sorted(p.removeprefix(f"{root}/") for p in fs.find(f"{root}/sha256")),
        tmp_path=tmp_path,
    )


def _s3_backend(store: ArtifactStore, client: Any, bucket: str, tmp_path: Path) -> Backend:
    def list_blobs() -> list[str]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix="artifacts/sha256/")
        return sorted(o["Key"].removeprefix("artifacts/") for o in listing.get("Contents", []))

    return Backend(
        store=store,
        read_raw=lambda sha: bytes(
            client.get_object(Bucket=bucket, Key=f"artifacts/{_blob_key(sha)}")["Body"].read()
        ),
        write_raw=lambda sha, data: client.put_object(
            Bucket=bucket, Key=f"artifacts/{_blob_key(sha)}", Body=data
        ),
        list_blobs=list_blobs,
        tmp_path=tmp_path,
    )


ALL_BACKENDS = ["local", "memory", pytest.param("s3", marks=pytest.mark.s3)]
REMOTE_BACKENDS = ["memory", pytest.param("s3", marks=pytest.mark.s3)]


def _make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if name == "local":
        yield _local_backend(tmp_path)
    elif name == "memory":
        prefix = f"ferryman-{uuid.uuid4().hex[:12]}"
        yield _memory_backend(tmp_path, prefix)
        memory = fsspec.filesystem("memory")
        if memory.exists(f"/{prefix}"):
            memory.rm(f"/{prefix}", recursive=True)
    else:
        yield _s3_backend(
            request.getfixturevalue("s3_store"),
            request.getfixturevalue("s3_client"),
            request.getfixturevalue("s3_bucket"),
            tmp_path,
        )


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _make_backend(request.param, request, tmp_path)


@pytest.fixture(params=REMOTE_BACKENDS)
def remote_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _make_backend(request.param, request, tmp_path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


# -- round trips ------------------------------------------------------------------------


def test_put_bytes_then_fetch_returns_identical_bytes(backend: Backend) -> None:
    data = b"model bytes \x00\x01\x02"
    ref = backend.store.put_bytes(data)
    path = backend.reader().fetch(ref, label=LABEL)
    assert (ref, path.read_bytes()) == (BlobRef(_sha256(data), len(data)), data)


def test_put_file_round_trips_a_file_larger_than_one_chunk(
    backend: Backend, tmp_path: Path
) -> None:
    data = os.urandom(3 * 2**20 + 12345)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    ref = backend.store.put_file(source)
    assert backend.reader().fetch(ref, label=LABEL).read_bytes() == data


def test_put_stream_stores_the_concatenated_chunks(backend: Backend) -> None:
    chunks: list[bytes | bytearray | memoryview] = [b"abc", bytearray(b"def"), memoryview(b"ghi")]
    ref = backend.store.put_stream(chunks)
    assert backend.reader().fetch(ref, label=LABEL).read_bytes() == b"abcdefghi"


def test_blob_is_stored_under_its_hash_in_the_documented_layout(backend: Backend) -> None:
    data = b"layout"
    backend.store.put_bytes(data)
    assert backend.list_blobs() == [_blob_key(_sha256(data))]


def test_storing_the_same_bytes_twice_keeps_one_blob(backend: Backend, tmp_path: Path) -> None:
    data = b"same bytes"
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    refs = {backend.store.put_bytes(data), backend.store.put_file(source)}
    assert (len(refs), len(backend.list_blobs())) == (1, 1)


def test_local_fetch_returns_the_stored_file_in_place(tmp_path: Path) -> None:
    store = ArtifactStore(uri=str(tmp_path / "artifacts"), cache_dir=tmp_path / "cache")
    ref = store.put_bytes(b"in place")
    assert store.fetch(ref, label=LABEL) == tmp_path / "artifacts" / _blob_key(ref.sha256)


def test_file_url_is_a_local_store(tmp_path: Path) -> None:
    store = ArtifactStore(uri=f"file://{tmp_path / 'artifacts'}", cache_dir=tmp_path / "cache")
    ref = store.put_bytes(b"file url")
    assert (tmp_path / "artifacts" / _blob_key(ref.sha256)).read_bytes() == b"file url"


def test_remote_fetch_returns_a_copy_in_the_cache_dir(remote_backend: Backend) -> None:
    ref = remote_backend.store.put_bytes(b"cached")
    reader = remote_backend.reader()
    assert reader.fetch(ref, label=LABEL) == reader.cache_dir / ref.sha256


# -- atomicity ----------------------------------------------------------------------------


def _chunks_then_crash() -> Iterator[bytes]:
    yield b"x" * 2**20
    raise RuntimeError("simulated crash half-way through the write")


def test_failed_write_leaves_nothing_under_a_final_name(backend: Backend) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        backend.store.put_stream(_chunks_then_crash())
    assert backend.list_blobs() == []


def test_failed_write_leaves_no_temporary_file_behind(backend: Backend) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        backend.store.put_stream(_chunks_then_crash())
    leftovers = [p for p in backend.tmp_path.rglob("*.part")]
    assert leftovers == []


# -- integrity ----------------------------------------------------------------------------


def test_fetch_refuses_a_tampered_blob_naming_label_and_both_hashes(backend: Backend) -> None:
    data = b"genuine model bytes"
    ref = backend.store.put_bytes(data)
    tampered = _flip_first_byte(data)
    backend.write_raw(ref.sha256, tampered)
    pattern = (
        f"{re.escape(LABEL)} failed its integrity check: "
        f"expected sha256 {ref.sha256}, got sha256 {_sha256(tampered)}"
    )
    with pytest.raises(ArtifactIntegrityError, match=pattern):
        backend.reader().fetch(ref, label=LABEL)


def test_fetch_refuses_a_truncated_blob_naming_both_sizes(backend: Backend) -> None:
    data = os.urandom(1000)
    ref = backend.store.put_bytes(data)
    backend.write_raw(ref.sha256, data[:400])
    pattern = (
        f"{re.escape(LABEL)} failed its integrity check: expected sha256 {ref.sha256} "
        rf"\(1000 bytes\), got sha256 {_sha256(data[:400])} \(400 bytes\)"
    )
    with pytest.raises(ArtifactIntegrityError, match=pattern):
        backend.reader().fetch(ref, label=LABEL)


def test_fetch_of_a_missing_blob_raises_not_found_naming_label_and_hash(
    backend: Backend,
) -> None:
    ref = BlobRef(_sha256(b"never stored"), 12)
    pattern = f"Artifact for {re.escape(LABEL)} not found: no blob sha256 {ref.sha256}"
    with pytest.raises(ArtifactNotFoundError, match=pattern):
        backend.store.fetch(ref, label=LABEL)


def test_fetch_refuses_a_tampered_cached_copy(remote_backend: Backend) -> None:
    data = b"cached model"
    ref = remote_backend.store.put_bytes(data)
    reader = remote_backend.reader()
    cached = reader.fetch(ref, label=LABEL)
    cached.write_bytes(_flip_first_byte(data))
    with pytest.raises(ArtifactIntegrityError, match="cached copy was removed"):
        reader.fetch(ref, label=LABEL)


def test_fetch_after_a_refused_cached_copy_downloads_a_fresh_one(
    remote_backend: Backend,
) -> None:
    data = b"cached model"
    ref = remote_backend.store.put_bytes(data)
    reader = remote_backend.reader()
    reader.fetch(ref, label=LABEL).write_bytes(_flip_first_byte(data))
    with pytest.raises(ArtifactIntegrityError):
        reader.fetch(ref, label=LABEL)
    assert reader.fetch(ref, label=LABEL).read_bytes() == data


def test_refused_download_is_not_kept_in_the_cache(remote_backend: Backend) -> None:
    data = b"genuine"
    ref = remote_backend.store.put_bytes(data)
    remote_backend.write_raw(ref.sha256, _flip_first_byte(data))
    reader = remote_backend.reader()
    with pytest.raises(ArtifactIntegrityError):
        reader.fetch(ref, label=LABEL)
    assert list(reader.cache_dir.iterdir()) == []


# -- exists and delete --------------------------------------------------------------------


def test_exists_reports_a_stored_blob(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"present")
    absent = BlobRef(_sha256(b"absent"), 6)
    assert (backend.store.exists(ref), backend.store.exists(absent)) == (True, False)


def test_delete_removes_the_blob(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"garbage")
    backend.store.delete(ref)
    with pytest.raises(ArtifactNotFoundError):
        backend.store.fetch(ref, label=LABEL)


def test_deleting_a_missing_blob_does_nothing(backend: Backend) -> None:
    ref = BlobRef(_sha256(b"absent"), 6)
    backend.store.delete(ref)
    assert backend.store.exists(ref) is False


# -- configuration and failures -----------------------------------------------------------


def test_constructor_does_no_io(tmp_path: Path) -> None:
    ArtifactStore(uri=str(tmp_path / "artifacts"), cache_dir=tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []


def test_repr_leaves_out_storage_options(tmp_path: Path) -> None:
    store = ArtifactStore(
        uri="s3://bucket/artifacts", storage_options={"secret": "hunter2"}, cache_dir=tmp_path
    )
    assert "hunter2" not in repr(store)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s: s.put_bytes(b"data"), id="put_bytes"),
        pytest.param(lambda s: s.fetch(BlobRef(_sha256(b"x"), 1), label=LABEL), id="fetch"),
        pytest.param(lambda s: s.exists(BlobRef(_sha256(b"x"), 1)), id="exists"),
    ],
)
def test_unreachable_s3_endpoint_raises_store_unavailable(
    operation: Callable[[ArtifactStore], object], tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    store = ArtifactStore(
        uri="s3://bucket/artifacts",
        storage_options={
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
            "key": "testing",
            "secret": "testing",
        },
        cache_dir=tmp_path / "cache",
    )
    with pytest.raises(StoreUnavailableError, match=re.escape("s3://bucket/artifacts")):
        operation(store)


def test_s3_uri_without_s3fs_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    store = ArtifactStore(uri="s3://bucket/artifacts", cache_dir=tmp_path)
    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'ferryman[s3]'")):
        store.exists(BlobRef(_sha256(b"x"), 1))


def test_importing_the_module_does_not_import_the_s3_stack() -> None:
    code = (
        "import sys, ferryman.store.artifacts\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'s3fs', 'botocore', 'aiobotocore'} or m.startswith('fsspec.implementations'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("sha256", "size"),
    [
        pytest.param("../../etc/passwd", 1, id="path-traversal"),
        pytest.param("A" * 64, 1, id="upper-case"),
        pytest.param("a" * 63, 1, id="too-short"),
        pytest.param("a" * 64, -1, id="negative-size"),
    ],
)
def test_blob_ref_rejects_malformed_values(sha256: str, size: int) -> None:
    with pytest.raises(InvalidInputError, match="Invalid blob"):
        BlobRef(sha256, size)


# -- property ---------------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    # The store is shared across examples on purpose: blobs are content-addressed.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=4096))
def test_any_bytes_round_trip_with_hashlibs_digest(backend: Backend, data: bytes) -> None:
    ref = backend.store.put_bytes(data)
    path = backend.reader().fetch(ref, label=LABEL)
    assert (ref.sha256, path.read_bytes()) == (hashlib.sha256(data).hexdigest(), data)
