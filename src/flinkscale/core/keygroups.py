"""Flink's key-group assignment, bit for bit, so skew analysis and the simulator place keys as Flink does.

A keyed stream in Flink never maps keys straight to subtasks. Each key goes to one of ``maxParallelism``
key groups, ``murmurHash(key.hashCode()) % maxParallelism`` (``KeyGroupRangeAssignment.
computeKeyGroupForKeyHash`` over ``MathUtils.murmurHash``), and each subtask owns a contiguous range of key
groups. Key groups are the unit of state redistribution on rescale, which is why max parallelism can
never change for a job restored from a savepoint and why a parallelism that does not divide it leaves some
subtasks with one more key group than others (128 key groups over 96 subtasks: 32 subtasks own 2, the
others 1, and the busiest carries 1.5x the mean with perfectly uniform keys).

The functions take the key's Java ``hashCode()`` (an int32), because that is what Flink hashes. For the
key types a PyFlink job declares with ``key_type=Types.STRING()`` / ``Types.LONG()`` / ``Types.INT()``,
``java_string_hash``, ``java_long_hash`` and ``java_int_hash`` reproduce ``hashCode()``; a PyFlink
DataStream ``key_by`` wraps the key in a one-field Row, whose hash ``pyflink_key_hash`` adds. (SQL jobs hash
their binary group-key rows differently; this module does not model that.) The expected values in the
unit tests were produced by Flink 2.3's own jars, not by this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from flinkscale.core.errors import InputError

#: Flink's bounds for max parallelism (``KeyGroupRangeAssignment``).
DEFAULT_LOWER_BOUND_MAX_PARALLELISM = 128
UPPER_BOUND_MAX_PARALLELISM = 32768

_MASK32 = 0xFFFFFFFF


def _to_int32(value: int) -> int:
    value &= _MASK32
    return value - (1 << 32) if value >= (1 << 31) else value


def _rotl32(value: int, distance: int) -> int:
    value &= _MASK32
    return ((value << distance) | (value >> (32 - distance))) & _MASK32


def _bit_mix(value: int) -> int:
    # MathUtils.bitMix: the murmur3 32-bit finaliser; `>>>` is a logical shift on the unsigned view.
    value &= _MASK32
    value ^= value >> 16
    value = (value * 0x85EBCA6B) & _MASK32
    value ^= value >> 13
    value = (value * 0xC2B2AE35) & _MASK32
    value ^= value >> 16
    return value


def murmur_hash(code: int) -> int:
    """Flink's ``MathUtils.murmurHash(int)``: a non-negative int32 from a Java int hash code."""
    _check_int32(code, "code")
    value = (code * 0xCC9E2D51) & _MASK32
    value = _rotl32(value, 15)
    value = (value * 0x1B873593) & _MASK32
    value = _rotl32(value, 13)
    value = (value * 5 + 0xE6546B64) & _MASK32
    value ^= 4
    mixed = _to_int32(_bit_mix(value))
    if mixed >= 0:
        return mixed
    # Java negates; Integer.MIN_VALUE has no positive twin, so Flink maps it to 0.
    return -mixed if mixed != -(1 << 31) else 0


def key_group_for_hash(java_hash_code: int, max_parallelism: int) -> int:
    """The key group of a key whose Java ``hashCode()`` is ``java_hash_code`` (``computeKeyGroupForKeyHash``)."""
    _check_max_parallelism(max_parallelism)
    return murmur_hash(java_hash_code) % max_parallelism


def operator_index_for_key_group(key_group: int, max_parallelism: int, parallelism: int) -> int:
    """The subtask that owns ``key_group`` (``computeOperatorIndexForKeyGroup``: kg x p / maxP)."""
    _check_layout(max_parallelism, parallelism)
    if not 0 <= key_group < max_parallelism:
        raise InputError(f"must be in [0, {max_parallelism}), got {key_group}", field="key_group")
    return key_group * parallelism // max_parallelism


@dataclass(frozen=True)
class KeyGroupRange:
    """Key groups ``start..end`` inclusive (Flink's ``KeyGroupRange``); empty when end < start."""

    start: int
    end: int

    def __len__(self) -> int:
        return max(0, self.end - self.start + 1)

    def __contains__(self, key_group: object) -> bool:
        return isinstance(key_group, int) and self.start <= key_group <= self.end

    def as_range(self) -> range:
        return range(self.start, self.end + 1)


def key_group_range(max_parallelism: int, parallelism: int, operator_index: int) -> KeyGroupRange:
    """The key groups subtask ``operator_index`` owns (``computeKeyGroupRangeForOperatorIndex``)."""
    _check_layout(max_parallelism, parallelism)
    if not 0 <= operator_index < parallelism:
        raise InputError(f"must be in [0, {parallelism}), got {operator_index}", field="operator_index")
    start = (operator_index * max_parallelism + parallelism - 1) // parallelism
    end = ((operator_index + 1) * max_parallelism - 1) // parallelism
    return KeyGroupRange(start, end)


def key_groups_per_subtask(max_parallelism: int, parallelism: int) -> tuple[int, ...]:
    """How many key groups each subtask owns, by subtask index."""
    return tuple(len(key_group_range(max_parallelism, parallelism, i)) for i in range(parallelism))


def layout_imbalance(max_parallelism: int, parallelism: int) -> float:
    """Busiest subtask's key groups over the mean, ceil(maxP/p) / (maxP/p): the max/mean load with uniform keys."""
    _check_layout(max_parallelism, parallelism)
    busiest = -(-max_parallelism // parallelism)
    return busiest * parallelism / max_parallelism


def default_max_parallelism(parallelism: int) -> int:
    """Flink's default: min(max(roundUpToPowerOfTwo(p + p/2), 128), 32768) (``computeDefaultMaxParallelism``)."""
    if parallelism < 1:
        raise InputError(f"must be >= 1, got {parallelism}", field="parallelism")
    wanted = parallelism + parallelism // 2
    power = 1 << max(0, (wanted - 1).bit_length())
    return min(max(power, DEFAULT_LOWER_BOUND_MAX_PARALLELISM), UPPER_BOUND_MAX_PARALLELISM)


def divisors(number: int) -> tuple[int, ...]:
    """All positive divisors of ``number``, ascending."""
    if number < 1:
        raise InputError(f"must be >= 1, got {number}", field="number")
    small = [d for d in range(1, int(number**0.5) + 1) if number % d == 0]
    return tuple(sorted(set(small + [number // d for d in small])))


def aligned_parallelism(parallelism: int, max_parallelism: int, upper_bound: int | None = None) -> int:
    """The divisor of max parallelism nearest ``parallelism``: search upward first (up to ``upper_bound``), then down.

    This is the Flink operator autoscaler's alignment rule for keyed vertices: with a divisor every subtask
    owns the same number of key groups, so uniform keys load every subtask equally.
    """
    _check_layout(max_parallelism, parallelism)
    ceiling = max_parallelism if upper_bound is None else min(upper_bound, max_parallelism)
    candidates = divisors(max_parallelism)
    upward = [d for d in candidates if parallelism <= d <= ceiling]
    if upward:
        return upward[0]
    downward = [d for d in candidates if d <= parallelism]
    return downward[-1]


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()``: s[0]x31^(n-1) + ... over UTF-16 code units, as int32."""
    data = text.encode("utf-16-be", "surrogatepass")
    value = 0
    for i in range(0, len(data), 2):
        value = (value * 31 + ((data[i] << 8) | data[i + 1])) & _MASK32
    return _to_int32(value)


def java_long_hash(value: int) -> int:
    """Java's ``Long.hashCode()``: (int)(v ^ (v >>> 32))."""
    unsigned = value & 0xFFFFFFFFFFFFFFFF
    return _to_int32(unsigned ^ (unsigned >> 32))


def java_int_hash(value: int) -> int:
    """Java's ``Integer.hashCode()``: the value itself (checked to be an int32)."""
    _check_int32(value, "value")
    return value


def pyflink_key_hash(field_hash_code: int) -> int:
    """The ``hashCode()`` of the key a PyFlink DataStream ``key_by`` hands to Flink.

    PyFlink wraps the selected key in a one-field ``Row`` (``KeyByKeySelector``), and ``Row.hashCode()``
    of an INSERT row with one field is the field's hash code + 62 (int32 arithmetic); checked against
    Flink 2.3's jar for strings, ints and longs, including overflow.
    """
    _check_int32(field_hash_code, "field_hash_code")
    return _to_int32(field_hash_code + 62)


def subtask_for_string_key(key: str, max_parallelism: int, parallelism: int) -> int:
    """The subtask a Java ``String`` key lands on (Java DataStream jobs): hashCode -> murmur -> kg -> index."""
    key_group = key_group_for_hash(java_string_hash(key), max_parallelism)
    return operator_index_for_key_group(key_group, max_parallelism, parallelism)


def subtask_for_pyflink_string_key(key: str, max_parallelism: int, parallelism: int) -> int:
    """The subtask of a PyFlink ``key_by(..., key_type=Types.STRING())`` key (wrapped in a Row by PyFlink)."""
    key_group = key_group_for_hash(pyflink_key_hash(java_string_hash(key)), max_parallelism)
    return operator_index_for_key_group(key_group, max_parallelism, parallelism)


def _check_int32(value: int, name: str) -> None:
    if not -(1 << 31) <= value < (1 << 31):
        raise InputError(f"must be a Java int (int32), got {value}", field=name)


def _check_max_parallelism(max_parallelism: int) -> None:
    if not 1 <= max_parallelism <= UPPER_BOUND_MAX_PARALLELISM:
        raise InputError(f"must be in [1, {UPPER_BOUND_MAX_PARALLELISM}], got {max_parallelism}",
                         field="max_parallelism")


def _check_layout(max_parallelism: int, parallelism: int) -> None:
    _check_max_parallelism(max_parallelism)
    if not 1 <= parallelism <= max_parallelism:
        raise InputError(f"must be in [1, max_parallelism={max_parallelism}], got {parallelism}", field="parallelism")
