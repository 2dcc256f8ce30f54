"""How a keyed edge spreads load over subtasks: Flink's key groups, vectorised over many keys.

Flink sends a record with key ``k`` to key group ``murmurHash(k.hashCode()) % maxParallelism`` and the key
group to subtask ``keyGroup * parallelism // maxParallelism`` (``KeyGroupRangeAssignment``). The simulator
needs that for up to tens of millions of keys at once, so this module computes Flink's ``MathUtils.murmurHash``
over numpy ``uint32`` arrays (the scalar, reference version is ``flinkscale.core.keygroups.murmur_hash``; a
unit test holds the two equal).

The work is split so a rescale is cheap: the per-key-group weights of a key distribution are computed once
(``key_group_weights``: hash every key, sum its probability into its key group), and the per-subtask shares
for a parallelism are a ``bincount`` over ``maxParallelism`` key groups (``subtask_shares``). Simulated keys
are the integers ``0..K-1`` as Java ``int``/``long`` keys, whose ``hashCode()`` is the value itself.

Distributions: ``uniform`` with no key count gives every key group exactly ``1/maxParallelism`` (the limit of
infinitely many keys), so only the parallelism layout creates imbalance; ``uniform`` with ``K`` keys adds the
hashing noise of a finite key set; ``zipf`` gives key of rank ``i`` (1-based) probability ``i^-s / H(K, s)``,
rank 1 being key 0, which puts the hottest key in whichever key group murmur sends 0 to, as Flink would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flinkscale.core.errors import InputError

FloatArray = npt.NDArray[np.float64]

#: The most keys a distribution may hash (memory: 8 bytes per key for the weights).
MAX_KEYS = 50_000_000


@dataclass(frozen=True)
class KeyDistribution:
    """The key distribution of a keyed edge: ``uniform`` or ``zipf`` (exponent ``exponent``) over ``keys`` keys."""

    kind: str = "uniform"
    keys: int | None = None
    exponent: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "zipf"):
            raise InputError(f"must be 'uniform' or 'zipf', got {self.kind!r}", field="distribution")
        if self.keys is not None and not 1 <= self.keys <= MAX_KEYS:
            raise InputError(f"must be in [1, {MAX_KEYS}], got {self.keys}", field="keys")
        if self.kind == "zipf" and self.keys is None:
            raise InputError("a zipf distribution needs a key count", field="keys")
        if not (math.isfinite(self.exponent) and self.exponent >= 0):
            raise InputError(f"must be >= 0, got {self.exponent}", field="exponent")

    def describe(self) -> str:
        if self.kind == "zipf":
            return f"zipf(s={self.exponent:g}) over {self.keys:,} keys"
        return "uniform over key groups" if self.keys is None else f"uniform over {self.keys:,} keys"


def murmur_hash_array(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Flink's ``MathUtils.murmurHash(int)`` for every Java int hash code in ``codes`` (non-negative results)."""
    value = np.asarray(codes, dtype=np.int64).astype(np.uint32)
    with np.errstate(over="ignore"):
        value = value * np.uint32(0xCC9E2D51)
        value = (value << np.uint32(15)) | (value >> np.uint32(17))
        value = value * np.uint32(0x1B873593)
        value = (value << np.uint32(13)) | (value >> np.uint32(19))
        value = value * np.uint32(5) + np.uint32(0xE6546B64)
        value ^= np.uint32(4)
        # bitMix, the murmur3 finaliser; shifts on uint32 are Java's logical `>>>`.
        value ^= value >> np.uint32(16)
        value = value * np.uint32(0x85EBCA6B)
        value ^= value >> np.uint32(13)
        value = value * np.uint32(0xC2B2AE35)
        value ^= value >> np.uint32(16)
    signed = value.astype(np.int32).astype(np.int64)
    # Java's `-code` for negatives; Integer.MIN_VALUE has no positive twin and Flink returns 0 for it.
    result: npt.NDArray[np.int64] = np.where(signed >= 0, signed, np.where(signed == -(1 << 31), 0, -signed))
    return result


def key_groups_of_keys(keys: int, max_parallelism: int) -> npt.NDArray[np.int64]:
    """The key group of each integer key ``0..keys-1`` (Java ``int`` keys: hashCode = value)."""
    codes = np.arange(keys, dtype=np.int64)
    groups: npt.NDArray[np.int64] = murmur_hash_array(codes) % max_parallelism
    return groups


def key_group_weights(distribution: KeyDistribution, max_parallelism: int) -> FloatArray:
    """The share of records that lands in each key group (sums to 1); computed once per edge."""
    if max_parallelism < 1:
        raise InputError(f"must be >= 1, got {max_parallelism}", field="max_parallelism")
    if distribution.keys is None:
        return np.full(max_parallelism, 1.0 / max_parallelism)
    if distribution.kind == "zipf":
        ranks = np.arange(1, distribution.keys + 1, dtype=np.float64)
        key_weights = ranks ** -distribution.exponent
    else:
        key_weights = np.ones(distribution.keys)
    weights = np.bincount(key_groups_of_keys(distribution.keys, max_parallelism), weights=key_weights,
                          minlength=max_parallelism).astype(np.float64)
    normalised: FloatArray = weights / weights.sum()
    return normalised


def subtask_shares(key_group_weight: FloatArray, parallelism: int) -> FloatArray:
    """Per-subtask share of a keyed edge's records at ``parallelism`` (Flink: subtask = kg * p // maxP)."""
    max_parallelism = len(key_group_weight)
    if not 1 <= parallelism <= max_parallelism:
        raise InputError(f"must be in [1, max_parallelism={max_parallelism}], got {parallelism}",
                         field="parallelism")
    owner = np.arange(max_parallelism, dtype=np.int64) * parallelism // max_parallelism
    shares: FloatArray = np.bincount(owner, weights=key_group_weight, minlength=parallelism).astype(np.float64)
    return shares


def partition_shares(partitions: int | None, parallelism: int) -> FloatArray:
    """Per-reader share of a source's records when ``partitions`` partitions are split over ``parallelism`` readers.

    Flink's KafkaSource gives partition ``n`` to reader ``(start + n) % p``; every reader gets ``P // p`` or one
    more, and with ``p > P`` the readers beyond ``P`` sit idle. The rotation ``start`` depends on the topic name
    and moves no load, so the first ``P % p`` readers carry the extra partition here. ``None`` = evenly split
    (a source without partitions, such as a generator).
    """
    if partitions is None:
        return np.full(parallelism, 1.0 / parallelism)
    counts = np.full(parallelism, partitions // parallelism, dtype=np.float64)
    counts[: partitions % parallelism] += 1
    shares: FloatArray = counts / partitions
    return shares


def imbalance(shares: FloatArray) -> float:
    """The busiest subtask's share over the mean share (1.0 = perfectly even)."""
    return float(shares.max() * len(shares) / shares.sum())
