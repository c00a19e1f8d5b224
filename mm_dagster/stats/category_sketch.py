"""A compact set of the reference's categories beyond those counted exactly: a Bloom filter.

A value the filter does not contain was never seen in the reference; a value it contains was seen,
except for a false positive with probability about `false_positive_rate` (then a truly new value
is counted as a rare reference value, never the other way round). Values are hashed with pandas'
SipHash (`pd.util.hash_array`) under a fixed key; the scheme name is stored with the bits, so a
sketch is only read by the scheme that wrote it.
"""

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.errors import MonitoringError

SCHEME = "bloom-siphash-v1"
HASH_KEY = "mm_dagster_cat_1"  # 16 bytes, as pandas requires
DEFAULT_FALSE_POSITIVE_RATE = 0.01
MAX_BYTES = 1 << 20


def hash_categories(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of the values' text (uint64), stable across processes and runs."""
    text = np.asarray(values, dtype=object).astype(str).astype(object)
    hashes: np.ndarray = pd.util.hash_array(text, hash_key=HASH_KEY, categorize=False)
    return hashes


def _bit_positions(hashes: np.ndarray, n_bits: int, n_hashes: int) -> np.ndarray:
    """Kirsch-Mitzenmacher double hashing: position_i = (h1 + i * h2) mod n_bits."""
    low = hashes & np.uint64(0xFFFFFFFF)
    high = (hashes >> np.uint64(32)) | np.uint64(1)
    steps = np.arange(n_hashes, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return (low[:, None] + steps[None, :] * high[:, None]) % np.uint64(n_bits)


@dataclass(frozen=True)
class CategorySketch:
    bits: np.ndarray  # uint8, little-endian bit order
    n_bits: int
    n_hashes: int
    size: int

    @classmethod
    def of(
        cls, values: np.ndarray, false_positive_rate: float = DEFAULT_FALSE_POSITIVE_RATE
    ) -> "CategorySketch":
        """A filter holding `values` (distinct or not), sized for their distinct count and the
        rate, at most MAX_BYTES (beyond that the false-positive rate grows)."""
        hashes = np.unique(hash_categories(values))
        size = max(int(hashes.size), 1)
        wanted = math.ceil(-size * math.log(false_positive_rate) / math.log(2) ** 2)
        n_bits = max(64, min(wanted, MAX_BYTES * 8))
        n_hashes = max(1, round(n_bits / size * math.log(2)))
        flags = np.zeros(n_bits, dtype=bool)
        flags[_bit_positions(hashes, n_bits, n_hashes).ravel().astype(np.int64)] = True
        return cls(np.packbits(flags, bitorder="little"), n_bits, n_hashes, int(hashes.size))

    def contains(self, values: np.ndarray) -> np.ndarray:
        if len(values) == 0:
            return np.zeros(0, dtype=bool)
        positions = _bit_positions(hash_categories(values), self.n_bits, self.n_hashes).astype(np.int64)
        flags = np.unpackbits(self.bits, bitorder="little", count=self.n_bits).astype(bool)
        return np.asarray(flags[positions].all(axis=1))

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": SCHEME,
            "bits": base64.b64encode(self.bits.tobytes()).decode("ascii"),
            "n_bits": self.n_bits,
            "n_hashes": self.n_hashes,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CategorySketch":
        if data.get("scheme") != SCHEME:
            raise MonitoringError(f"category sketch scheme {data.get('scheme')!r} is not {SCHEME!r}")
        bits = np.frombuffer(base64.b64decode(data["bits"]), dtype=np.uint8)
        return cls(bits, int(data["n_bits"]), int(data["n_hashes"]), int(data["size"]))
