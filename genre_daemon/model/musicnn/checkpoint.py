"""Read a TensorFlow tensor-bundle checkpoint (``PREFIX.index`` + ``PREFIX.data-*``) with numpy.

Why: the pretrained musicnn weights ship as TF1 checkpoints, and the daemon must not need
TensorFlow (a gigabyte) to convert them. The format is small enough to read by hand:

* ``.index`` is a LevelDB-style table (SSTable): data blocks of prefix-compressed
  ``key -> value`` entries with a restart array, an index block pointing at them, and a
  48-byte footer ending in a magic number. Every block is followed by a one-byte compression
  type (only 0, uncompressed, is accepted: TF writes bundles uncompressed) and a masked CRC32C.
* Keys are tensor names; the value is a serialized ``BundleEntryProto`` (dtype, shape, shard,
  offset, size, crc32c). The entry with the empty key is the ``BundleHeaderProto``.
* ``.data-0000S-of-0000N`` holds each tensor's raw little-endian bytes at ``offset``.

Only what the bundle format needs is parsed (protobuf varints by hand); anything unexpected
raises :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["CheckpointError", "TensorEntry", "read_checkpoint", "read_bundle", "crc32c"]

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)

# tensorflow/core/framework/types.proto -> numpy little-endian dtypes (numeric types only).
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or not a tensor bundle this reader handles."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shard(s), as the index describes it."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None


# --- CRC32C (Castagnoli), as LevelDB and TF use it -------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of ``data`` (pure Python: fine for index blocks, slow for megabytes)."""
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- protobuf / varint parsing ------------------------------------------------------------------

def _varint(buf: bytes, pos: int, fail: Callable[[str], CheckpointError]) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise fail("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise fail("varint too long")


def _fields(buf: bytes, fail: Callable[[str], CheckpointError]) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (field number, wire type, value) triples."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, fail)
        field, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos, fail)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise fail("truncated fixed64")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos, fail)
            if pos + n > len(buf):
                raise fail("truncated length-delimited field")
            value = buf[pos:pos + n]
            pos += n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise fail("truncated fixed32")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise fail(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_shape(buf: bytes, fail: Callable[[str], CheckpointError]) -> tuple[int, ...]:
    dims: list[int] = []
    for field, _, value in _fields(buf, fail):
        if field == 2 and isinstance(value, bytes):  # TensorShapeProto.dim
            size = 0
            for f2, _, v2 in _fields(value, fail):
                if f2 == 1 and isinstance(v2, int):
                    size = _signed64(v2)
            if size < 0:
                raise fail("tensor of unknown dimension")
            dims.append(size)
        elif field == 3 and value:
            raise fail("tensor of unknown rank")
    return tuple(dims)


def _parse_entry(buf: bytes, fail: Callable[[str], CheckpointError]) -> TensorEntry:
    dtype = shard = offset = size = 0
    shape: tuple[int, ...] = ()
    crc: int | None = None
    for field, _, value in _fields(buf, fail):
        if field == 1 and isinstance(value, int):
            dtype = value
        elif field == 2 and isinstance(value, bytes):
            shape = _parse_shape(value, fail)
        elif field == 3 and isinstance(value, int):
            shard = value
        elif field == 4 and isinstance(value, int):
            offset = _signed64(value)
        elif field == 5 and isinstance(value, int):
            size = _signed64(value)
        elif field == 6 and isinstance(value, int):
            crc = value
        elif field == 7:
            raise fail("partitioned (sliced) tensors are not supported")
    return TensorEntry(dtype, shape, shard, offset, size, crc)


# --- SSTable --------------------------------------------------------------------------------------

def _block(raw: bytes, offset: int, size: int, fail: Callable[[str], CheckpointError]) -> bytes:
    end = offset + size
    if offset < 0 or size < 0 or end + BLOCK_TRAILER_SIZE > len(raw):
        raise fail(f"block at {offset}+{size} runs past the end of the file")
    contents = raw[offset:end]
    compression = raw[end]
    if compression != 0:
        raise fail(f"block compression type {compression} (only 0, uncompressed, is supported)")
    stored = struct.unpack_from("<I", raw, end + 1)[0]
    if _unmask(stored) != crc32c(raw[offset:end + 1]):
        raise fail(f"CRC mismatch in block at offset {offset}")
    return contents


def _block_entries(block: bytes, fail: Callable[[str], CheckpointError]) -> list[tuple[bytes, bytes]]:
    """Decode one block's prefix-compressed entries (the restart array only bounds them)."""
    if len(block) < 4:
        raise fail("block too short")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * n_restarts
    if n_restarts == 0 or limit < 0:
        raise fail("bad restart array")
    restarts = struct.unpack_from(f"<{n_restarts}I", block, limit)
    if restarts[0] != 0 or any(r > limit for r in restarts):
        raise fail("bad restart offsets")
    restart_set = set(restarts)
    out: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        at = pos
        shared, pos = _varint(block, pos, fail)
        non_shared, pos = _varint(block, pos, fail)
        value_len, pos = _varint(block, pos, fail)
        if at in restart_set and shared != 0:
            raise fail("entry at a restart point shares a key prefix")
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise fail("corrupt block entry")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        out.append((key, block[pos:pos + value_len]))
        pos += value_len
    return out


def _table(raw: bytes, fail: Callable[[str], CheckpointError]) -> list[tuple[bytes, bytes]]:
    if len(raw) < FOOTER_SIZE:
        raise fail("file too short to be a table")
    footer = raw[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
        raise fail("bad table magic (not a TensorFlow checkpoint index)")
    pos = 0
    _meta_off, pos = _varint(footer, pos, fail)
    _meta_size, pos = _varint(footer, pos, fail)
    index_off, pos = _varint(footer, pos, fail)
    index_size, pos = _varint(footer, pos, fail)
    entries: list[tuple[bytes, bytes]] = []
    for _, handle in _block_entries(_block(raw, index_off, index_size, fail), fail):
        off, p = _varint(handle, 0, fail)
        size, _ = _varint(handle, p, fail)
        entries.extend(_block_entries(_block(raw, off, size, fail), fail))
    keys = [k for k, _ in entries]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise fail("table keys are not strictly increasing")
    return entries


# --- public API ---------------------------------------------------------------------------------

def read_bundle(index: bytes, shards: list[bytes], name: str = "checkpoint",
                verify_data_crc: bool = False) -> dict[str, np.ndarray]:
    """Decode a tensor bundle from the bytes of its ``.index`` and of its data shards.

    ``name`` is used in error messages (the index file's path). Numeric tensors only.
    ``verify_data_crc`` also checks each tensor's CRC32C (pure Python: about a second per 10 MB).
    """

    def fail(msg: str) -> CheckpointError:
        return CheckpointError(f"{name}: {msg}")

    entries = _table(index, fail)
    if not entries or entries[0][0] != b"":
        raise fail("no bundle header entry (empty key)")
    header = {f: v for f, _, v in _fields(entries[0][1], fail)}
    num_shards = header.get(1, 1)
    if header.get(2, 0) != 0:
        raise fail("big-endian bundles are not supported")
    if num_shards != len(shards):
        raise fail(f"header says {num_shards} data shard(s), {len(shards)} given")
    out: dict[str, np.ndarray] = {}
    for key, value in entries[1:]:
        tname = key.decode("utf-8", errors="replace")
        e = _parse_entry(value, fail)
        dt = DTYPES.get(e.dtype)
        if dt is None:
            raise fail(f"tensor {tname!r} has unsupported dtype enum {e.dtype}")
        count = int(np.prod(e.shape, dtype=np.int64)) if e.shape else 1
        if e.size != count * dt.itemsize:
            raise fail(f"tensor {tname!r}: size {e.size} does not match shape {e.shape} of {dt}")
        if not 0 <= e.shard_id < len(shards):
            raise fail(f"tensor {tname!r}: shard {e.shard_id} out of range")
        shard = shards[e.shard_id]
        if e.offset < 0 or e.offset + e.size > len(shard):
            raise fail(f"tensor {tname!r}: bytes {e.offset}+{e.size} past the end of the data file")
        chunk = shard[e.offset:e.offset + e.size]
        if verify_data_crc and e.crc32c is not None and _unmask(e.crc32c) != crc32c(chunk):
            raise fail(f"tensor {tname!r}: data CRC mismatch")
        out[tname] = np.frombuffer(chunk, dtype=dt).reshape(e.shape).astype(dt.newbyteorder("="))
    return out


def read_checkpoint(prefix: str | Path, verify_data_crc: bool = False) -> dict[str, np.ndarray]:
    """Read every tensor of the checkpoint at ``prefix`` (``prefix.index`` and its data shards).

    ``prefix`` is what TF's Saver takes, e.g. ``.../MSD_musicnn/`` (files ``.index`` inside).
    """
    prefix = str(prefix)
    index_path = Path(prefix + ".index")
    try:
        index = index_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{index_path}: cannot read checkpoint index ({exc})") from exc

    def fail(msg: str) -> CheckpointError:
        return CheckpointError(f"{index_path}: {msg}")

    entries = _table(index, fail)
    num_shards = 1
    if entries and entries[0][0] == b"":
        num_shards = int({f: v for f, _, v in _fields(entries[0][1], fail)}.get(1, 1))
    shards = []
    for i in range(num_shards):
        p = Path(f"{prefix}.data-{i:05d}-of-{num_shards:05d}")
        try:
            shards.append(p.read_bytes())
        except OSError as exc:
            raise CheckpointError(f"{p}: cannot read checkpoint data ({exc})") from exc
    return read_bundle(index, shards, str(index_path), verify_data_crc)
