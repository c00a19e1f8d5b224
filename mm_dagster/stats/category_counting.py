"""A window's text values counted over the reference's known categories in one compiled pass
over their Arrow memory.

pandas' and Arrow's `value_counts` hash every value of a column with a general-purpose table
(~19 ns a value for 1M short strings, measured); here each value's UTF-8 bytes are hashed in
8-byte words and looked up in a small open-addressing table of the known categories, compared
byte for byte on a hit. Values that are none of them (rare on calm traffic) are handed back as
Arrow values for the caller to count its own way. `tests/test_category_counting.py` compares the
counts with pandas' `value_counts`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

# Columns shorter than this are counted by `value_counts` (the kernel's setup costs more there).
KERNEL_MIN_VALUES = 20_000
# Rows of values none of the known categories kept by the first pass (more: a second pass).
UNKNOWN_ROWS_KEPT = 4096
_SEED = np.uint64(0x9E3779B97F4A7C15)
_MULTIPLIER = np.uint64(0xFF51AFD7ED558CCD)


@njit(cache=True, nogil=True)
def _mix(h: np.uint64, word: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    h = (h ^ word) * _MULTIPLIER
    return h ^ (h >> np.uint64(32))


@njit(cache=True, nogil=True)
def _word(data: np.ndarray, start: int, length: int) -> np.uint64:  # pragma: no cover - compiled
    """Up to 8 bytes from `start`, little-endian, the bytes past `length` zero."""
    word = np.uint64(0)
    for j in range(min(length, 8)):
        word |= np.uint64(data[start + j]) << np.uint64(8 * j)
    return word


@njit(cache=True, nogil=True)
def _aligned_word(words: np.ndarray, start: int, length: int) -> np.uint64:  # pragma: no cover - compiled
    """`_word` from the buffer read as aligned 8-byte words (two loads and shifts, no branch on
    the length to mispredict); `start // 8 + 1` must be a word of the buffer."""
    at = np.uint64(8 * (start & 7))
    word: np.uint64 = (words[start >> 3] >> at) | (
        (words[(start >> 3) + 1] << np.uint64(1)) << (np.uint64(63) - at)
    )
    if length < 8:
        word &= (np.uint64(1) << np.uint64(8 * length)) - np.uint64(1)
    return word


@njit(cache=True, nogil=True)
def _hash(data: np.ndarray, start: int, end: int) -> np.uint64:  # pragma: no cover - compiled
    """A 64-bit hash of data[start:end]: its length, then its 8-byte words."""
    h = _mix(_SEED, np.uint64(end - start))
    for word_start in range(start, max(end, start + 1), 8):
        h = _mix(h, _word(data, word_start, min(end - word_start, 8)))
    return h


@njit(cache=True, nogil=True)
def _fill_slots(
    data: np.ndarray, offsets: np.ndarray, slots: np.ndarray
) -> None:  # pragma: no cover - compiled
    mask = np.uint64(slots.size - 1)
    for code in range(offsets.size - 1):
        slot = _hash(data, offsets[code], offsets[code + 1]) & mask
        while slots[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        slots[slot] = code


@njit(cache=True, nogil=True)
def _short_words(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Each value of at most 8 bytes as one word (0 for longer ones)."""
    words = np.zeros(offsets.size - 1, dtype=np.uint64)
    for code in range(words.size):
        length = offsets[code + 1] - offsets[code]
        if length <= 8:
            words[code] = _word(data, offsets[code], length)
    return words


@njit(cache=True, nogil=True)
def _same(
    data: np.ndarray, start: int, end: int, other: np.ndarray, o_start: int, o_end: int
) -> bool:  # pragma: no cover - compiled
    if end - start != o_end - o_start:
        return False
    j = 0
    while j < end - start and data[start + j] == other[o_start + j]:
        j += 1
    return j == end - start


@njit(cache=True, nogil=True)
def _count_known(
    offsets: np.ndarray,
    data: np.ndarray,
    words: np.ndarray,
    validity: np.ndarray,
    first_bit: int,
    known_data: np.ndarray,
    known_offsets: np.ndarray,
    short_words: np.ndarray,
    slots: np.ndarray,
    counts: np.ndarray,
    unknown_rows: np.ndarray,
) -> int:  # pragma: no cover - compiled; tests/test_category_counting.py checks it against pandas
    """Counts each non-null value that is a known category; writes the rows of the others to
    `unknown_rows` (as many as it holds) and returns how many there are. `data`: the values'
    bytes, `words` the same memory as 8-byte words; `validity`: Arrow's bitmap from `first_bit`
    (empty: no nulls); `short_words`: each known category of at most 8 bytes (most are) as the
    word it is compared as, with its length (`KnownCategories`)."""
    mask = np.uint64(slots.size - 1)
    unknown = 0
    for i in range(offsets.size - 1):
        if validity.size:
            bit = first_bit + i
            if not (validity[bit >> 3] >> (bit & 7)) & 1:
                continue
        start, end = offsets[i], offsets[i + 1]
        length = end - start
        code = -1
        if length <= 8:
            word = (
                _aligned_word(words, start, length)
                if (start >> 3) + 1 < words.size
                else _word(data, start, length)
            )
            slot = _mix(_mix(_SEED, np.uint64(length)), word) & mask
            while slots[slot] >= 0:
                candidate = slots[slot]
                if (
                    short_words[candidate] == word
                    and known_offsets[candidate + 1] - known_offsets[candidate] == length
                ):
                    code = candidate
                    break
                slot = (slot + np.uint64(1)) & mask
        else:
            slot = _hash(data, start, end) & mask
            while slots[slot] >= 0:
                candidate = slots[slot]
                if _same(
                    data, start, end, known_data, known_offsets[candidate], known_offsets[candidate + 1]
                ):
                    code = candidate
                    break
                slot = (slot + np.uint64(1)) & mask
        if code >= 0:
            counts[code] += 1
        else:
            if unknown < unknown_rows.size:
                unknown_rows[unknown] = i
            unknown += 1
    return unknown


@dataclass(frozen=True)
class KnownCategories:
    """Categories as the kernel looks them up: their UTF-8 bytes end to end, where each ends,
    those of at most 8 bytes as one word each, and an open-addressing table of their codes (-1:
    empty) at most half full."""

    data: np.ndarray
    offsets: np.ndarray
    short_words: np.ndarray
    slots: np.ndarray

    @classmethod
    def of(cls, names: Sequence[str]) -> "KnownCategories":
        encoded = [name.encode("utf-8") for name in names]
        offsets = np.concatenate(([0], np.cumsum([len(b) for b in encoded]))).astype(np.int64)
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
        slots = np.full(1 << max(3, (2 * len(names)).bit_length()), -1, dtype=np.int64)
        _fill_slots(data, offsets, slots)
        return cls(data, offsets, _short_words(data, offsets), slots)

    @property
    def size(self) -> int:
        return int(self.offsets.size - 1)


def arrow_text(values: pd.Series) -> pa.ChunkedArray | None:
    """`values` as the Arrow string array they are stored in (no copy), or None when they are
    not Arrow strings or are too few for the kernel."""
    if len(values) < KERNEL_MIN_VALUES or not hasattr(values.array, "__arrow_array__"):
        return None
    dtype = values.dtype
    on_arrow = isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and str(dtype.storage).startswith("pyarrow")
    )
    if not on_arrow:
        return None
    text = pa.chunked_array(values.array.__arrow_array__())
    return text if pa.types.is_string(text.type) or pa.types.is_large_string(text.type) else None


def known_counts(text: pa.ChunkedArray, known: KnownCategories) -> tuple[np.ndarray, pa.ChunkedArray]:
    """How many non-null values of `text` are each known category (int64, in the codes' order),
    and the non-null values that are none of them."""
    counts = np.zeros(known.size, dtype=np.int64)
    rest = [_count_chunk(chunk, known, counts) for chunk in text.chunks if len(chunk)]
    return counts, pa.chunked_array([r for r in rest if len(r)], type=text.type)


def _count_chunk(chunk: pa.Array, known: KnownCategories, counts: np.ndarray) -> pa.Array:
    """Adds the chunk's known values to `counts`; returns its other non-null values."""
    validity_buffer, offsets_buffer, data_buffer = chunk.buffers()[:3]
    width = np.int32 if chunk.type == pa.string() else np.int64
    offsets = np.frombuffer(offsets_buffer, dtype=width, count=chunk.offset + len(chunk) + 1)[chunk.offset :]
    data = np.zeros(0, np.uint8) if data_buffer is None else np.frombuffer(data_buffer, dtype=np.uint8)
    words = np.frombuffer(data, dtype=np.uint64, count=data.size // 8)
    if data_buffer is not None and data_buffer.address % 8:  # Arrow aligns its buffers; a copy if not
        words = np.frombuffer(data.tobytes(), dtype=np.uint64, count=data.size // 8)
    validity = (
        np.zeros(0, np.uint8)
        if validity_buffer is None or chunk.null_count == 0
        else np.frombuffer(validity_buffer, dtype=np.uint8)
    )
    arrays = (
        offsets,
        data,
        words,
        validity,
        chunk.offset,
        known.data,
        known.offsets,
        known.short_words,
        known.slots,
    )
    unknown_rows = np.empty(min(len(chunk), UNKNOWN_ROWS_KEPT), dtype=np.int64)
    unknown = int(_count_known(*arrays, counts, unknown_rows))
    if unknown > unknown_rows.size:  # many unseen values: a second pass collects their rows
        unknown_rows = np.empty(unknown, dtype=np.int64)
        _count_known(*arrays, np.zeros_like(counts), unknown_rows)
    return chunk.take(pa.array(unknown_rows[:unknown]))


def rest_value_counts(rest: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """The distinct values of `rest` and how many times each occurs."""
    if not len(rest):
        return [], np.zeros(0, dtype=np.int64)
    counted = pc.value_counts(rest)
    return counted.field("values").to_pylist(), counted.field("counts").to_numpy().astype(np.int64)
