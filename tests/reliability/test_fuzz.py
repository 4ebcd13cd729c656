"""Fuzzing (hypothesis): the register-map parser and the decoder on hostile input.

The parser must return definitions or a :class:`RegisterMapError` that says where
(field and/or line) in a bounded message, never another exception, in bounded time
and memory. The decoder must turn any 16-bit words into a value or "no value" for
every data type, never raise, and never hand out NaN or infinity.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
import yaml

from adaptive_modbus_engine.register_map import (
    MAX_MESSAGE_CHARS,
    RegisterMapError,
    parse_register_map,
)
from adaptive_modbus_engine.registers import DataType, Order, RegisterSpec, Table

FIELDS = [
    "key", "name", "table", "address", "data_type", "count", "bit", "word_order",
    "byte_order", "scale", "offset", "precision", "unit", "device_class", "state_class",
    "tolerance", "writable", "entity_category", "enabled_by_default", "icon", "min", "max",
    "step", "min_interval", "max_interval",
]  # fmt: skip
SECONDS_PER_PARSE = 2.0
# the part of the message that is not the message itself: "line N, field 'F': "
WHERE_CHARS = 90

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["holding", "input", "coil", "discrete", "float32", "bit", "big", "little"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
register = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=8
)
document = st.one_of(
    st.lists(register, max_size=5),
    st.fixed_dictionaries({"registers": st.lists(register, max_size=5)}),
    st.dictionaries(
        st.sampled_from(["registers", "name", "max_registers"]), values, max_size=3
    ),
    values,
)
YAML_CHARS = "[]{}:,-&*!|>'\"#?%@` \n\t\\.0123456789abcdenrstxyz<=~^"


def check_parse(text: str) -> None:
    """Parse ``text``: definitions, or a RegisterMapError that says where; nothing else."""
    started = time.perf_counter()
    error: RegisterMapError | None = None
    try:
        result = parse_register_map(text, unit_id=1)
    except RegisterMapError as err:
        error = err
    else:
        assert isinstance(result, list) and result
        for definition in result:
            assert definition.spec.unit_id == 1 and definition.key
    if error is not None:
        assert error.line is not None or error.field is not None, str(error)
        assert error.line is None or error.line >= 1
        assert error.message
        assert len(str(error)) <= MAX_MESSAGE_CHARS + WHERE_CHARS
    assert time.perf_counter() - started < SECONDS_PER_PARSE


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_parser_on_random_structures(data: Any) -> None:
    """Test the map parser on random YAML structures."""
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        return
    check_parse(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=YAML_CHARS, max_size=400))
def test_parser_on_random_yaml_characters(text: str) -> None:
    """Test the map parser on random strings of YAML's special characters."""
    check_parse(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_on_random_unicode(text: str) -> None:
    """Test the map parser on random Unicode text."""
    check_parse(text)


@settings(max_examples=100, deadline=None)
@given(
    depth=st.integers(min_value=1, max_value=12),
    fanout=st.integers(min_value=1, max_value=12),
    where=st.sampled_from(["registers: *x{d}\n", "registers:\n  - name: *x{d}\n"]),
)
def test_parser_on_alias_nests_is_bounded_in_time_and_memory(
    depth: int, fanout: int, where: str
) -> None:
    """Nested aliases of any depth and fan-out (up to 12**12 values expanded)."""
    lines = ['x0: &x0 ["lol"]']
    for level in range(1, depth + 1):
        refs = ",".join([f"*x{level - 1}"] * fanout)
        lines.append(f"x{level}: &x{level} [{refs}]")
    text = "\n".join(lines) + "\n" + where.format(d=depth)
    tracemalloc.start()
    try:
        check_parse(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_parser_on_mutated_real_maps() -> None:
    """Every one-character deletion and a few insertions in a valid map."""
    good = (
        "registers:\n  - name: Grid power\n    table: input\n    address: 12\n"
        "    data_type: float32\n    min: 0\n    max: 10\n  - key: p\n    name: P\n"
        "    table: coil\n    address: 0\n    writable: true\n"
    )
    check_parse(good)
    for i in range(len(good)):
        check_parse(good[:i] + good[i + 1 :])
        for extra in ("[", "&a ", "*a", ":", "\t", "- "):
            check_parse(good[:i] + extra + good[i:])


NUMERIC = [DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32,
           DataType.INT64, DataType.UINT64, DataType.FLOAT32, DataType.FLOAT64]  # fmt: skip
finite_nonzero = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: x != 0
)


@st.composite
def spec_and_words(draw: st.DrawFn) -> tuple[RegisterSpec, list[int]]:
    """Draw a random register spec and words to decode."""
    data_type = draw(st.sampled_from(list(DataType)))
    kwargs: dict[str, Any] = {
        "key": "r",
        "unit_id": 1,
        "address": 0,
        "data_type": data_type,
        "table": Table.COIL if data_type is DataType.BOOL else Table.HOLDING,
        "word_order": draw(st.sampled_from(list(Order))),
        "byte_order": draw(st.sampled_from(list(Order))),
    }
    if data_type in NUMERIC:
        kwargs["scale"] = draw(
            finite_nonzero | st.sampled_from([1.0, 0.1, 0.01, -1.0, 10.0])
        )
        kwargs["offset"] = draw(
            st.floats(allow_nan=False, allow_infinity=False) | st.just(0.0)
        )
        kwargs["precision"] = draw(st.none() | st.integers(0, 10))
    if data_type is DataType.STRING:
        kwargs["count"] = draw(st.integers(1, 8))
    if data_type is DataType.BIT:
        kwargs["bit"] = draw(st.integers(0, 15))
    spec = RegisterSpec(**kwargs)
    top = 1 if data_type is DataType.BOOL else 0xFFFF
    words = draw(st.lists(st.integers(0, top), min_size=spec.size, max_size=spec.size))
    return spec, words


@settings(max_examples=1000, deadline=None)
@given(spec_and_words())
def test_decoder_on_random_words(case: tuple[RegisterSpec, list[int]]) -> None:
    """Test that decoding random words gives a value of the right kind or None."""
    spec, words = case
    value = spec.decode(words)
    if spec.is_numeric:
        assert value is None or (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and abs(value) <= 1.7976931348623157e308
        )
        if value is None:
            raw = spec.__class__(
                key="raw", unit_id=1, table=Table.HOLDING, address=0, data_type=spec.data_type,
                word_order=spec.word_order, byte_order=spec.byte_order,
            ).decode(words)  # fmt: skip
            # no value only for a NaN/inf float or a scaled value beyond the float range
            assert raw is None or not math.isfinite(raw * spec.scale + spec.offset)
    elif spec.data_type is DataType.STRING:
        assert isinstance(value, str)
    else:
        assert isinstance(value, bool)


@pytest.mark.parametrize("data_type", [DataType.FLOAT32, DataType.FLOAT64])
@given(sign=st.sampled_from([0, 1]), mantissa=st.integers(min_value=0))
@settings(max_examples=200, deadline=None)
def test_every_nan_and_inf_pattern_is_no_value(
    data_type: DataType, sign: int, mantissa: int
) -> None:
    """All exponent bits set: inf (mantissa 0) or one of the many NaN payloads."""
    bits = 32 if data_type is DataType.FLOAT32 else 64
    fraction = 23 if bits == 32 else 52
    exponent = (1 << (bits - 1 - fraction)) - 1
    raw = (sign << (bits - 1)) | (exponent << fraction) | (mantissa % (1 << fraction))
    words = [(raw >> shift) & 0xFFFF for shift in range(bits - 16, -1, -16)]
    spec = RegisterSpec(
        key="f", unit_id=1, table=Table.INPUT, address=0, data_type=data_type
    )
    assert spec.decode(words) is None
