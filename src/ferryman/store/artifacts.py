"""Content-addressed artifact storage: immutable blobs named by the SHA-256 of their bytes.

A blob lives at ``<uri>/sha256/<first two hex digits>/<other 62 hex digits>``, where
``uri`` is a local directory or any fsspec URL (``s3://bucket/prefix``, ``memory://…``).
Because the name is the content's hash, storing the same bytes twice stores them once, and
every read can prove it got back exactly what was stored: :meth:`ArtifactStore.fetch`
re-hashes the bytes on every call and refuses a blob that does not match.

Writes are atomic, so a crash never leaves a partial blob under its final name:

* On a local filesystem the bytes go to a temporary file in the store's staging
  directory ``<uri>/.staging`` (on the same filesystem as the blobs: the final directory
  is only known once the last byte has been hashed), are flushed to disk, and are then
  moved into place with :func:`os.replace`, which is atomic within one filesystem.
* On an object store (S3 and compatibles) an object becomes visible only when its single
  ``PUT`` (or the ``CompleteMultipartUpload`` of a large upload) succeeds, so readers see
  either nothing or the whole object; there is no rename to do. The store then checks
  the stored size. Fetch verification is the backstop for backends with weaker
  guarantees.

Remote blobs are fetched into ``cache_dir/<sha256>`` (downloaded under a temporary name,
verified, then renamed), and the cached copy is verified again on every fetch.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ferryman.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigurationError,
    FerrymanError,
    InvalidInputError,
    MissingDependencyError,
    StoreUnavailableError,
)

# 1 MiB: large enough that per-call overhead vanishes, small enough to stay in cache;
# measured at ~1.5 GB/s with OpenSSL's SHA-256, the same as hashing bytes in memory.
_CHUNK_SIZE = 1 << 20
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PROTOCOL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_LOCAL_PREFIXES = ("file://", "local://")
_S3_PROTOCOLS = frozenset({"s3", "s3a"})

_Chunk = bytes | bytearray | memoryview


@dataclass(frozen=True)
class BlobRef:
    """The address of a stored blob: its SHA-256 and its size.

    Attributes:
        sha256: The blob's SHA-256 as 64 lower-case hex digits.
        size: The blob's length in bytes.

    Raises:
        InvalidInputError: ``sha256`` is not 64 lower-case hex digits, or ``size`` is not a
            non-negative integer.
    """

    sha256: str
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or _SHA256_HEX.fullmatch(self.sha256) is None:
            raise InvalidInputError(
                f"Invalid blob hash {self.sha256!r}: expected 64 lower-case hex digits"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidInputError(
                f"Invalid blob size {self.size!r}: expected a non-negative integer"
            )


class ArtifactStore:
    """Content-addressed blob storage on a local directory or an fsspec URL.

    Construction does no I/O; directories and remote clients are created on first use.

    Args:
        uri: A local directory path (or ``file://`` URL), or any fsspec URL such as
            ``s3://bucket/prefix``. Blobs live under ``<uri>/sha256/``.
        storage_options: Keyword arguments passed as-is to the fsspec filesystem, e.g.
            ``{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}`` for an
            S3-compatible server. Ignored for local paths. Values are free-form because
            each fsspec backend defines its own; they are left out of ``repr`` since they
            may hold credentials.
        cache_dir: Local directory for verified copies of remote blobs (and for staging
            uploads). Unused for a local ``uri``.
    """

    def __init__(
        self,
        *,
        uri: str,
        storage_options: Mapping[str, Any] | None = None,
        cache_dir: Path,
    ) -> None:
        self.uri = uri
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self.cache_dir = Path(cache_dir)
        self._local_root = _local_root(uri)
        self._fs: Any = None
        self._fs_root = ""

    def __repr__(self) -> str:
        return f"ArtifactStore(uri={self.uri!r}, cache_dir={self.cache_dir!r})"

    # -- writing ----------------------------------------------------------------------------

    def put_file(self, path: Path) -> BlobRef:
        """Store a file's bytes, hashing them while they stream (1 MiB at a time).

        A blob that is already stored with the same size is not uploaded again.

        Args:
            path: The file to store.

        Returns:
            The stored blob's address.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ArtifactIntegrityError: The object store holds a different size after upload.
            StoreUnavailableError: The remote store cannot be reached.
            MissingDependencyError: ``uri`` is ``s3://`` and ``s3fs`` is not installed.
        """
        with open(path, "rb", buffering=0) as source:
            return self.put_stream(_read_chunks(source))

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store bytes held in memory.

        Args:
            data: The bytes to store.

        Returns:
            The stored blob's address.

        Raises:
            ArtifactIntegrityError: The object store holds a different size after upload.
            StoreUnavailableError: The remote store cannot be reached.
            MissingDependencyError: ``uri`` is ``s3://`` and ``s3fs`` is not installed.
        """
        if self._local_root is not None:
            return self.put_stream([data])
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        fs, key = self._remote_key(ref)
        with self._remote_errors("store a blob"):
            if not _remote_has(fs, key, ref.size):
                fs.pipe_file(key, bytes(data))
                self._check_upload(fs, key, ref)
        return ref

    def put_stream(self, chunks: Iterable[_Chunk]) -> BlobRef:
        """Store bytes produced chunk by chunk, e.g. by a serializer writing a large model.

        Nothing becomes visible under the blob's name unless every chunk was consumed: if
        the iterable raises, the partial bytes are discarded and the error propagates.
        For a remote store the bytes are first staged in ``cache_dir`` (so the uploaded
        bytes are exactly the hashed ones), and the staged copy then becomes the cached
        copy.

        Args:
            chunks: The blob's bytes, in order.

        Returns:
            The stored blob's address.

        Raises:
            ArtifactIntegrityError: The object store holds a different size after upload.
            StoreUnavailableError: The remote store cannot be reached.
            MissingDependencyError: ``uri`` is ``s3://`` and ``s3fs`` is not installed.
        """
        if self._local_root is not None:
            return self._put_local(self._local_root, chunks)
        return self._put_remote(chunks)

    # -- reading ----------------------------------------------------------------------------

    def fetch(self, ref: BlobRef, *, label: str) -> Path:
        """Return a local path to a verified copy of a blob.

        For a local store this is the stored file itself (do not modify it); for a remote
        store it is ``cache_dir/<sha256>``, downloaded on first use. Either way the file's
        SHA-256 and size are checked on every call.

        Args:
            ref: The blob to fetch.
            label: What the blob is, for error messages, e.g. ``"model 'churn' version 3"``.

        Returns:
            The path of a local file holding exactly the blob's bytes.

        Raises:
            ArtifactNotFoundError: No blob with that hash is stored.
            ArtifactIntegrityError: The stored (or cached) bytes do not match the hash or
                size. A bad cached copy is removed, so fetching again downloads afresh.
            StoreUnavailableError: The remote store cannot be reached.
            MissingDependencyError: ``uri`` is ``s3://`` and ``s3fs`` is not installed.
        """
        if self._local_root is not None:
            path = _blob_path(self._local_root, ref)
            try:
                digest, size = _hash_file(path)
            except FileNotFoundError as exc:
                raise self._not_found(ref, label) from exc
            _verify(
                ref,
                digest,
                size,
                label=label,
                source=str(path),
                advice="Re-register the artifact from its original file or restore the "
                "blob from a backup.",
            )
            return path
        return self._fetch_remote(ref, label)

    def exists(self, ref: BlobRef) -> bool:
        """Whether a blob with this hash is stored; its contents are not verified.

        Raises:
            StoreUnavailableError: The remote store cannot be reached.
            MissingDependencyError: ``uri`` is ``s3://`` and ``s3fs`` is not installed.
        """
        if self._local_root is not None:
            return _blob_path(self._local_root, ref).is_file()
        fs, key = self._remote_key(ref)
        with self._remote_errors("look up a blob"):
            return _remote_size(fs, key) is not None

    def delete(self, ref: BlobRef) -> None:
        """Delete a blob and any cached copy; deleting a missing blob does nothing.

        Meant for garbage collection of blobs no version refers to any more.

        Raises:
            StoreUnavailableError: The remote store cannot be reached.
            MissingDependencyError: ``uri`` is ``s3://`` and ``s3fs`` is not installed.
        """
        if self._local_root is not None:
            _blob_path(self._local_root, ref).unlink(missing_ok=True)
            return
        fs, key = self._remote_key(ref)
        with self._remote_errors("delete a blob"), suppress(FileNotFoundError):
            fs.rm_file(key)
        (self.cache_dir / ref.sha256).unlink(missing_ok=True)

    # -- local backend ----------------------------------------------------------------------

    def _put_local(self, root: Path, chunks: Iterable[_Chunk]) -> BlobRef:
        staging = root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        tmp, out = _create_temp(staging)
        try:
            with out:
                ref = _copy_hashing(chunks, out)
                final = _blob_path(root, ref)
                already_stored = _local_size(final) == ref.size
                if not already_stored:
                    out.flush()
                    os.fsync(out.fileno())
            if already_stored:
                tmp.unlink()  # deduplicated: the stored file stays untouched
                return ref
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_directory(final.parent)
        return ref

    # -- remote backend ---------------------------------------------------------------------

    def _put_remote(self, chunks: Iterable[_Chunk]) -> BlobRef:
        fs = self._filesystem()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp, out = _create_temp(self.cache_dir)
        try:
            with out:
                ref = _copy_hashing(chunks, out)
            _, key = self._remote_key(ref)
            with self._remote_errors("store a blob"):
                if not _remote_has(fs, key, ref.size):
                    fs.put_file(str(tmp), key)
                    self._check_upload(fs, key, ref)
            os.replace(tmp, self.cache_dir / ref.sha256)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ref

    def _fetch_remote(self, ref: BlobRef, label: str) -> Path:
        cached = self.cache_dir / ref.sha256
        try:
            digest, size = _hash_file(cached)
        except FileNotFoundError:
            pass
        else:
            if digest == ref.sha256 and size == ref.size:
                return cached
            cached.unlink(missing_ok=True)
            _verify(
                ref,
                digest,
                size,
                label=label,
                source=f"the cached copy {cached}",
                advice=f"The cached copy was removed; fetching again downloads a fresh "
                f"copy from {self.uri}.",
            )
        fs, key = self._remote_key(ref)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp, out = _create_temp(self.cache_dir)
        try:
            with out, self._remote_errors("download a blob"):
                try:
                    source = fs.open(key, "rb")
                except FileNotFoundError as exc:
                    raise self._not_found(ref, label) from exc
                with source:
                    downloaded = _copy_hashing(_read_chunks(source), out)
            _verify(
                ref,
                downloaded.sha256,
                downloaded.size,
                label=label,
                source=f"{self.uri} (sha256/{ref.sha256[:2]}/{ref.sha256[2:]})",
                advice="Re-register the artifact from its original file or restore the "
                "blob from a backup.",
            )
            os.replace(tmp, cached)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return cached

    def _filesystem(self) -> Any:
        if self._fs is None:
            protocols = {p.lower() for p in _PROTOCOL.findall(self.uri)}
            if protocols & _S3_PROTOCOLS:
                try:
                    import s3fs  # noqa: F401
                except ImportError as exc:
                    raise MissingDependencyError(
                        "s3fs", feature="S3 artifact storage", extra="s3"
                    ) from exc
            import fsspec.core

            try:
                fs, root = fsspec.core.url_to_fs(self.uri, **self.storage_options)
            except ValueError as exc:
                raise ConfigurationError(
                    f"Cannot use artifact store URI {self.uri!r}: {exc}. Use a local path "
                    "or an fsspec URL such as s3://bucket/prefix."
                ) from exc
            self._fs_root = str(root).rstrip("/")
            self._fs = fs
        return self._fs

    def _remote_key(self, ref: BlobRef) -> tuple[Any, str]:
        fs = self._filesystem()
        return fs, f"{self._fs_root}/sha256/{ref.sha256[:2]}/{ref.sha256[2:]}"

    def _check_upload(self, fs: Any, key: str, ref: BlobRef) -> None:
        stored = _remote_size(fs, key)
        if stored != ref.size:
            raise ArtifactIntegrityError(
                f"Upload of blob sha256 {ref.sha256} to {self.uri} is incomplete: the store "
                f"holds {stored} bytes, expected {ref.size}. Store the artifact again."
            )

    @contextmanager
    def _remote_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except FerrymanError:
            raise
        except Exception as exc:
            if not _is_unavailable(exc):
                raise
            raise StoreUnavailableError(
                f"Artifact store {self.uri} is unavailable (could not {action}): {exc}. "
                "Check that the endpoint is reachable and that the storage options "
                "(endpoint_url, credentials) are right."
            ) from exc

    def _not_found(self, ref: BlobRef, label: str) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"Artifact for {label} not found: no blob sha256 {ref.sha256} in {self.uri}. "
            "It was deleted, or the artifact store URI points elsewhere."
        )


def _local_root(uri: str) -> Path | None:
    # Made absolute now, so that a later change of working directory cannot move the store.
    for prefix in _LOCAL_PREFIXES:
        if uri.startswith(prefix):
            return Path(uri[len(prefix) :]).expanduser().absolute()
    if "://" in uri or "::" in uri:
        return None
    return Path(uri).expanduser().absolute()


def _blob_path(root: Path, ref: BlobRef) -> Path:
    return root / "sha256" / ref.sha256[:2] / ref.sha256[2:]


def _local_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _create_temp(directory: Path) -> tuple[Path, IO[bytes]]:
    # os.open with 0o666 (not mkstemp's 0o600) so the blob gets the usual umask-derived
    # permissions: a serving process running as another user must be able to read it.
    path = directory / f".{secrets.token_hex(12)}.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return path, os.fdopen(fd, "wb")


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_chunks(source: IO[bytes]) -> Iterator[_Chunk]:
    readinto = getattr(source, "readinto", None)
    if readinto is None:
        while chunk := source.read(_CHUNK_SIZE):
            yield chunk
        return
    # One reused buffer; each view is consumed before the next read overwrites it.
    buffer = bytearray(_CHUNK_SIZE)
    view = memoryview(buffer)
    while n := readinto(buffer):
        yield view[:n]


def _copy_hashing(chunks: Iterable[_Chunk], out: IO[bytes]) -> BlobRef:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        out.write(chunk)
        size += memoryview(chunk).nbytes
    return BlobRef(digest.hexdigest(), size)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as source:
        while n := source.readinto(buffer):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def _verify(ref: BlobRef, digest: str, size: int, *, label: str, source: str, advice: str) -> None:
    if digest == ref.sha256 and size == ref.size:
        return
    if size != ref.size:
        detail = (
            f"expected sha256 {ref.sha256} ({ref.size} bytes), got sha256 {digest} ({size} bytes)"
        )
    else:
        detail = f"expected sha256 {ref.sha256}, got sha256 {digest}"
    raise ArtifactIntegrityError(
        f"Artifact for {label} failed its integrity check: {detail} from {source}. {advice}"
    )


def _remote_size(fs: Any, key: str) -> int | None:
    try:
        info = fs.info(key)
    except FileNotFoundError:
        return None
    size = info.get("size")
    return int(size) if size is not None else None


def _remote_has(fs: Any, key: str, size: int) -> bool:
    return _remote_size(fs, key) == size


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # botocore is only loaded when an S3 filesystem was created; if it is not loaded,
    # the error cannot come from it, and importing it here would be wasted work.
    botocore_errors = sys.modules.get("botocore.exceptions")
    if botocore_errors is None:
        return False
    return isinstance(
        exc,
        botocore_errors.ConnectionError
        | botocore_errors.HTTPClientError
        | botocore_errors.NoCredentialsError,
    )


__all__ = ["ArtifactStore", "BlobRef"]
