"""The blob area: file contents stored once by their SHA-256, shared by every file table (docs/format.md, "File
tables and blobs (format 4)").

A blob is `blobs/<first two hex digits>/<sha256>` (the bytes as they are) or `blobs/<first two hex>/<sha256>.zst`
(one zstd frame of them): the name says the encoding, so a reader never guesses from the content. Content is
compressed when the first chunk compresses by at least MIN_SAVING and the whole file does too (a file smaller than a
chunk is compressed once, whole, and kept compressed if that saves MIN_SAVING); content that starts
with the signature of an already-compressed format (JPEG, PNG, zip, gzip, zstd, Parquet, ...) is stored as is
without trying. Blobs are published with put-if-absent, read in chunks of `chunk_size` bytes (memory stays bounded
by a few chunks whatever the size) and checked against their size and SHA-256 as they are read.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import zstandard

from .errors import CorruptionError, FolderInputError

BLOBS_DIR = "blobs"
ZSTD_SUFFIX = ".zst"
RAW, ZSTD = "raw", "zstd"
CHUNK_SIZE = 8 * 1024 * 1024
MIN_SAVING = 0.10  # compressed only when this fraction of the bytes is saved
LEVEL = 3
# blobs larger than this are published with a streamed replace (multipart on object stores) after find() saw none
STREAMED_PUT = 64 * 1024 * 1024
# signatures of formats that are compressed already: stored as is without trying zstd
COMPRESSED_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF8",
    b"PK\x03\x04",  # zip, docx, jar, npz, ...
    b"\x1f\x8b",  # gzip
    b"\x28\xb5\x2f\xfd",  # zstd
    b"PAR1",  # Parquet
    b"\xfd7zXZ\x00",  # xz
    b"BZh",  # bzip2
    b"7z\xbc\xaf\x27\x1c",
    b"RIFF",  # webp, avi, wav
    b"OggS",
    b"fLaC",
    b"\x04\x22\x4d\x18",  # lz4 frame
)


def blob_path(sha256: str, encoding: str) -> str:
    """Where the blob of `sha256` is stored in `encoding` (RAW or ZSTD), relative to the store root."""
    name = f"{BLOBS_DIR}/{sha256[:2]}/{sha256}"
    return name + ZSTD_SUFFIX if encoding == ZSTD else name


def parse_name(name: str) -> tuple[str, str] | None:
    """(sha256, encoding) of a blob file name, None if it is no blob's name."""
    sha, encoding = (name[: -len(ZSTD_SUFFIX)], ZSTD) if name.endswith(ZSTD_SUFFIX) else (name, RAW)
    if len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
        return sha, encoding
    return None


@dataclass(frozen=True)
class Staged:
    """A local file's content read once: its hash and size, and a staging file holding its blob."""

    sha256: str
    size: int
    encoding: str
    staged: str  # a staging file of the storage, consumed by Blobs.publish


@dataclass(frozen=True)
class Found:
    path: str
    encoding: str
    modified: float
    stored: int = -1  # the stored (encoded) size, -1 if unknown


class Blobs:
    """The blob area of one store, through its storage (local disk or object store alike)."""

    def __init__(self, storage: Any, *, chunk_size: int = CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.storage = storage
        self.chunk_size = chunk_size

    # --- writing --------------------------------------------------------------------------------------------

    def stage(self, local: str, *, size: int | None = None) -> Staged:
        """Read the local file `local` once, in chunks: hash it and write its blob (compressed or not) to a staging
        file. FolderInputError if it cannot be read. `size` (what a listing saw) lets a file smaller than a chunk be
        read in one read and compressed at most once (_stage_whole)."""
        staged = self.storage.staging_file(".blob")
        try:
            with _open_input(local) as source, open(staged, "wb") as out:
                if size is not None and size < self.chunk_size:
                    first = _read(source, size + 1)
                    if len(first) <= size:  # the whole file (it did not grow since it was listed)
                        return _stage_whole(first, out, staged)
                    first += _read(source, self.chunk_size - len(first))
                else:
                    first = _read(source, self.chunk_size)
                digest, size = hashlib.sha256(first), len(first)
                if _worth_compressing(first):
                    sha, size, compressed = self._write_zstd(source, first, digest, out)
                    if compressed:
                        return Staged(sha, size, ZSTD, staged)
                    out.seek(0)
                    out.truncate()
                    source.seek(0)
                    first = _read(source, self.chunk_size)
                    digest, size = hashlib.sha256(first), len(first)
                out.write(first)
                for chunk in _chunks_of(source, self.chunk_size):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                return Staged(digest.hexdigest(), size, RAW, staged)
        except BaseException:
            self.storage.delete_staged(staged)
            raise

    def _write_zstd(self, source: BinaryIO, first: bytes, digest: Any, out: BinaryIO) -> tuple[str, int, bool]:
        """Compress `first` and the rest of `source` into `out`; whether it saved MIN_SAVING (else `out` is junk)."""
        compressor = zstandard.ZstdCompressor(level=LEVEL).compressobj()
        size = len(first)
        written = out.write(compressor.compress(first))
        for chunk in _chunks_of(source, self.chunk_size):
            digest.update(chunk)
            size += len(chunk)
            written += out.write(compressor.compress(chunk))
        written += out.write(compressor.flush())
        return digest.hexdigest(), size, written <= (1 - MIN_SAVING) * size

    def find(self, sha256: str) -> Found | None:
        """The stored blob of `sha256` (either encoding), None if there is none."""
        for encoding in (RAW, ZSTD):
            path = blob_path(sha256, encoding)
            try:
                info = self.storage.stat(path)
            except FileNotFoundError:
                continue
            return Found(path, encoding, info.modified, info.size)
        return None

    def publish(self, staged: Staged, *, sync_directory: bool = True) -> str:
        """Publish a staged blob that find() did not see (the staging file is consumed); its path. With
        sync_directory=False its directory entry is made durable only by storage.sync_directories([path])."""
        path = blob_path(staged.sha256, staged.encoding)
        if os.path.getsize(staged.staged) > STREAMED_PUT:  # an object store's put-if-absent holds the file in memory
            self.storage.put_staged(path, staged.staged, sync_directory=sync_directory)  # same name, same content
        else:
            self.storage.put_staged_if_absent(path, staged.staged, sync_directory=sync_directory)
        return path

    def refresh(self, staged: Staged, found: Found, *, sync_directory: bool = True) -> str:
        """Write a blob that exists already again (same content, same name), making it young for vacuum's grace."""
        self.storage.put_staged(found.path, self._restaged(staged, found.encoding), sync_directory=sync_directory)
        return found.path

    def _restaged(self, staged: Staged, encoding: str) -> str:
        if encoding == staged.encoding:
            return staged.staged
        other = self.storage.staging_file(".blob")  # re-encode to the stored name's encoding
        with open(other, "wb") as out:
            self._write_decoded(staged.staged, staged.encoding, out, reencode=encoding)
        self.storage.delete_staged(staged.staged)
        return other

    def _write_decoded(self, local: str, encoding: str, out: BinaryIO, *, reencode: str) -> None:
        with open(local, "rb") as f:
            chunks: Iterator[bytes] = _chunks_of(f, self.chunk_size)
            if encoding == ZSTD:
                chunks = _decompressed(_Reader(chunks), self.chunk_size)
            compressor = zstandard.ZstdCompressor(level=LEVEL).compressobj() if reencode == ZSTD else None
            for chunk in chunks:
                out.write(compressor.compress(chunk) if compressor else chunk)
            if compressor:
                out.write(compressor.flush())

    def copy_to(self, other: Blobs, sha256: str, size: int) -> bool:
        """Copy the blob of `sha256` to another store's blob area in the same encoding, checked before it is
        published there; False if it was there already. CorruptionError if it is missing or damaged here."""
        if other.find(sha256) is not None:
            return False
        found = self._require(sha256)
        staged = other.storage.staging_file(".blob")
        try:
            with open(staged, "wb") as out:
                for chunk in self._stored_chunks(found.path):
                    out.write(chunk)
            with open(staged, "rb") as f:
                for _ in _content(_chunks_of(f, self.chunk_size), found, sha256, size, self.chunk_size):
                    pass
        except BaseException:
            other.storage.delete_staged(staged)
            raise
        other.storage.put_staged_if_absent(found.path, staged)
        return True

    # --- reading --------------------------------------------------------------------------------------------

    def open(self, sha256: str, size: int) -> BinaryIO:
        """A readable file object of the content; reading it to the end raises CorruptionError if the blob does not
        hold `size` bytes with this SHA-256 (a partial read is checked as far as it goes: the size)."""
        found = self._require(sha256)
        return io.BufferedReader(_IterRaw(self._verified_chunks(found, sha256, size)), buffer_size=self.chunk_size)

    def write_to(self, sha256: str, size: int, out: BinaryIO) -> None:
        """Write the content to `out`, verified (CorruptionError, after writing, if it does not match)."""
        for content in self._verified_chunks(self._require(sha256), sha256, size):
            out.write(content)

    def whole(self, sha256: str, size: int) -> bytes | None:
        """The verified content of a blob of at most a chunk, read in one read and decompressed at once (None if
        `size` is larger: write_to streams it). CorruptionError if it is missing or does not hold `size` bytes
        with this SHA-256. On local disk one open of the stored file (storage.read_small; the raw name tried first,
        then the zstd one), no stat."""
        if size > self.chunk_size:
            return None
        read_small = getattr(self.storage, "read_small", None)  # local disk; object stores read ranges
        if read_small is None:
            return b"".join(self._verified_chunks(self._require(sha256), sha256, size))
        for encoding in (RAW, ZSTD):
            path = blob_path(sha256, encoding)
            try:
                stored = read_small(path, self.chunk_size)
            except FileNotFoundError:
                continue
            if stored is None:  # stored larger than a chunk for a content of at most one: streamed, to say why
                return b"".join(_content(self._stored_chunks(path), Found(path, encoding, 0.0), sha256, size, self.chunk_size))
            found = Found(path, encoding, 0.0, len(stored))
            content = _whole_content(stored, found, size)
            if content is None:  # does not decode at once: _content tells why
                return b"".join(_content(iter([stored]), found, sha256, size, self.chunk_size))
            _check_whole(content, found, sha256, size)
            return content
        raise CorruptionError(blob_path(sha256, RAW), None, "blob is missing")

    def check(self, sha256: str, size: int) -> CorruptionError | None:
        """Why the blob of `sha256` is not intact (missing, undecodable, other content), None if it is."""
        try:
            for _ in self._verified_chunks(self._require(sha256), sha256, size):
                pass
        except CorruptionError as e:
            return e
        return None

    def paths(self) -> list[str]:
        """Every blob in the store (paths relative to the root)."""
        return [f"{BLOBS_DIR}/{d}/{name}" for d in self.storage.list_dirs(BLOBS_DIR) for name in self.storage.list(f"{BLOBS_DIR}/{d}")]

    def _require(self, sha256: str) -> Found:
        found = self.find(sha256)
        if found is None:
            raise CorruptionError(blob_path(sha256, RAW), None, "blob is missing")
        return found

    def _stored_chunks(self, path: str, total: int = -1) -> Iterator[bytes]:
        """The stored bytes of `path` (`total` of them, if known), one ranged read of chunk_size at a time."""
        total = self.storage.size(path) if total < 0 else total
        for start in range(0, total, self.chunk_size):
            yield self.storage.read_range(path, start, min(start + self.chunk_size, total))

    def _verified_chunks(self, found: Found, sha256: str, size: int) -> Iterator[bytes]:
        if 0 <= found.stored <= self.chunk_size and size <= self.chunk_size:  # one read, one decompression
            stored = self.storage.read_range(found.path, 0, found.stored) if found.stored else b""
            content = _whole_content(stored, found, size)
            if content is not None:
                return _checked(content, found, sha256, size)
            return _content(iter([stored]), found, sha256, size, self.chunk_size)  # to tell why it does not decode
        return _content(self._stored_chunks(found.path, found.stored), found, sha256, size, self.chunk_size)


def _content(stored: Iterator[bytes], found: Found, sha256: str, size: int, chunk_size: int) -> Iterator[bytes]:
    """The content of a blob from its stored bytes, checked against `size` and `sha256`: the last piece comes only
    once the whole content matched (CorruptionError instead)."""
    digest, seen = hashlib.sha256(), 0
    pieces = _decompressed(_Reader(stored), chunk_size) if found.encoding == ZSTD else stored
    previous: bytes | None = None
    try:
        for piece in pieces:
            digest.update(piece)
            seen += len(piece)
            if seen > size:
                break
            if previous is not None:
                yield previous
            previous = piece
    except zstandard.ZstdError as e:
        raise CorruptionError(found.path, None, f"blob does not decode as zstd: {e}") from None
    if seen != size or digest.hexdigest() != sha256:
        raise CorruptionError(found.path, None, f"blob content is not the {size} bytes with sha256 {sha256[:16]}... its rows name")
    if previous is not None:
        yield previous


def _whole_content(stored: bytes, found: Found, size: int) -> bytes | None:
    """The content of a blob read whole (at most a chunk), decompressed at once into at most `size` + 1 bytes; None
    if it does not decode so (_content then says why, in chunks)."""
    if found.encoding != ZSTD:
        return stored
    try:
        if zstandard.frame_content_size(stored) > size:  # says it holds more than the row's size: not inflated
            return None
        return _decompressor().decompress(stored, max_output_size=size + 1)
    except zstandard.ZstdError:
        return None


def _checked(content: bytes, found: Found, sha256: str, size: int) -> Iterator[bytes]:
    _check_whole(content, found, sha256, size)
    if content:
        yield content


def _check_whole(content: bytes, found: Found, sha256: str, size: int) -> None:
    if len(content) != size or hashlib.sha256(content).hexdigest() != sha256:
        raise CorruptionError(found.path, None, f"blob content is not the {size} bytes with sha256 {sha256[:16]}... its rows name")


def _stage_whole(content: bytes, out: BinaryIO, staged: str) -> Staged:
    """The blob of a whole file's `content` (smaller than a chunk) written to `out`: compressed once, kept if that
    saves MIN_SAVING (no separate trial on a sample: for small files it would cost as much as the compression)."""
    sha = hashlib.sha256(content).hexdigest()
    if _may_compress(content):
        packed = _compressor().compress(content)
        if len(packed) <= (1 - MIN_SAVING) * len(content):
            out.write(packed)
            return Staged(sha, len(content), ZSTD, staged)
    out.write(content)
    return Staged(sha, len(content), RAW, staged)


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor at LEVEL (a compressor is not to be used by two threads at once)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor (making one allocates its context: ~0.1 ms, more than inflating a small file)."""
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def _may_compress(first: bytes) -> bool:
    """Whether content starting with `first` may be worth compressing: not tiny, not of a compressed format."""
    return not (len(first) < 64 or first.startswith(COMPRESSED_SIGNATURES) or first[4:8] == b"ftyp")  # mp4/mov/heic


def _worth_compressing(first: bytes) -> bool:
    """Whether to try zstd: the first chunk is not of a compressed format and compresses by MIN_SAVING."""
    if not _may_compress(first):
        return False
    sample = first[: 1024 * 1024]
    return len(zstandard.ZstdCompressor(level=1).compress(sample)) <= (1 - MIN_SAVING) * len(sample)


def _open_input(local: str) -> BinaryIO:
    try:
        return open(local, "rb")
    except OSError as e:
        raise FolderInputError(local, f"cannot read {local!r}: {e.strerror or e}") from None


def _read(f: BinaryIO, n: int) -> bytes:
    try:
        return f.read(n)
    except OSError as e:
        raise FolderInputError(getattr(f, "name", "?"), f"cannot read {getattr(f, 'name', '?')!r}: {e.strerror or e}") from None


def _chunks_of(f: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    while True:
        try:
            chunk = f.read(chunk_size)
        except OSError as e:
            raise FolderInputError(getattr(f, "name", "?"), f"cannot read {getattr(f, 'name', '?')!r}: {e.strerror or e}") from None
        if not chunk:
            return
        yield chunk


def _decompressed(reader: _Reader, chunk_size: int) -> Iterator[bytes]:
    """The content of a zstd stream, in pieces of at most chunk_size bytes (bounded memory for any ratio)."""
    decompressor = zstandard.ZstdDecompressor()
    yield from decompressor.read_to_iter(cast(BinaryIO, reader), read_size=chunk_size, write_size=chunk_size)


class _Reader:
    """A read() over an iterator of byte chunks (for zstandard)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while len(self._buffer) < n or n < 0:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out, self._buffer = (self._buffer, b"") if n < 0 else (self._buffer[:n], self._buffer[n:])
        return out


class _IterRaw(io.RawIOBase):
    """A raw binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = chunk
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

