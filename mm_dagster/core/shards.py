"""Shards of a window's endpoints: K disjoint parts, each analysed by its own Dagster step.

An endpoint's shard comes from a stable 63-bit hash of its id (not Python's salted `hash`), the
same in every process and on every host, so a retried or re-run step analyses the same endpoints.
Shard i of K holds the hashes in [i/K, (i+1)/K) of the hash range: a range, whatever K, so an
event file sorted by the hash (`EventStore.compact_slot`) gives every shard a contiguous run of
rows that the reader finds from the row groups' statistics.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from mm_dagster.core.errors import MonitoringError

MAX_SHARDS = 256
V = TypeVar("V")


KEY_BITS = 63  # fits a signed 64-bit column, whose Parquet statistics every reader orders alike
KEY_SPACE = 1 << KEY_BITS


def shard_key(endpoint_id: str) -> int:
    """The endpoint's place in the hash range, 0 <= key < 2**63."""
    digest = hashlib.blake2b(endpoint_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - KEY_BITS)


def shard_of(endpoint_id: str, count: int) -> int:
    """The shard (0 .. count-1) that analyses `endpoint_id`."""
    return (shard_key(endpoint_id) * count) >> KEY_BITS


def check_shard_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
        raise MonitoringError(f"shards must be an integer from 1 to {MAX_SHARDS}, got {count!r}")
    return count


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (`Shard(0, 1)`: every endpoint)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        check_shard_count(self.count)
        if not 0 <= self.index < self.count:
            raise MonitoringError(f"shard index must be in 0..{self.count - 1}, got {self.index}")

    @property
    def label(self) -> str:
        return f"shard {self.index + 1} of {self.count}"

    @property
    def key_range(self) -> tuple[int, int]:
        """The shard keys this shard holds: [low, high), `key * count >> 63 == index` exactly."""
        return -(-self.index * KEY_SPACE // self.count), -(-(self.index + 1) * KEY_SPACE // self.count)

    def holds(self, endpoint_id: str) -> bool:
        return self.count == 1 or shard_of(endpoint_id, self.count) == self.index

    def select(self, endpoint_ids: Iterable[str]) -> list[str]:
        return [e for e in endpoint_ids if self.holds(e)]

    def part_of(self, by_endpoint: Mapping[str, V]) -> dict[str, V]:
        """The entries of `by_endpoint` (keyed by endpoint id) this shard holds."""
        return {e: v for e, v in by_endpoint.items() if self.holds(e)}


EVERY_ENDPOINT = Shard(0, 1)


def all_shards(count: int) -> list[Shard]:
    return [Shard(i, check_shard_count(count)) for i in range(count)]
