"""Register specs: validation names the field; decode and encode round-trip."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.adaptive_modbus.engine.registers import (
    DataType,
    DecodeError,
    Order,
    RegisterSpec,
    RegisterSpecError,
    Table,
)


def spec(**kwargs: object) -> RegisterSpec:
    base: dict[str, object] = {"key": "r", "unit_id": 1, "table": Table.HOLDING, "address": 0}
    base.update(kwargs)
    return RegisterSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"key": ""}, "key"),
        ({"unit_id": 256}, "unit_id"),
        ({"unit_id": -1}, "unit_id"),
        ({"address": 65536}, "address"),
        ({"address": 65535, "data_type": DataType.UINT32}, "address"),
        ({"table": Table.COIL, "data_type": DataType.UINT16}, "data_type"),
        ({"data_type": DataType.BOOL}, "data_type"),
        ({"data_type": DataType.STRING, "count": 0}, "count"),
        ({"count": 2}, "count"),
        ({"data_type": DataType.BIT}, "bit"),
        ({"data_type": DataType.BIT, "bit": 16}, "bit"),
        ({"bit": 3}, "bit"),
        ({"table": Table.INPUT, "writable": True}, "writable"),
        ({"scale": 0.0}, "scale"),
        ({"scale": math.nan}, "scale"),
        ({"offset": math.inf}, "offset"),
        ({"precision": 11}, "precision"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"min_interval": 0.0}, "min_interval"),
        ({"min_interval": 10.0, "max_interval": 5.0}, "max_interval"),
    ],
)
def test_invalid_spec_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(RegisterSpecError) as err:
        spec(**kwargs)
    assert err.value.field == field
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("data_type", "words", "expected"),
    [
        (DataType.INT16, [0xFFFF], -1),
        (DataType.UINT16, [0xFFFF], 65535),
        (DataType.INT32, [0xFFFF, 0xFFFE], -2),
        (DataType.UINT32, [0x0001, 0x0000], 65536),
        (DataType.INT64, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], -1),
        (DataType.UINT64, [0, 0, 1, 0], 65536),
        (DataType.FLOAT32, list(struct.unpack(">HH", struct.pack(">f", 1.5))), 1.5),
        (DataType.FLOAT64, list(struct.unpack(">HHHH", struct.pack(">d", -2.25))), -2.25),
    ],
)
def test_decode_numeric(data_type: DataType, words: list[int], expected: float) -> None:
    assert spec(data_type=data_type).decode(words) == expected


def test_word_and_byte_order() -> None:
    big = spec(data_type=DataType.UINT32)
    little_words = spec(data_type=DataType.UINT32, word_order=Order.LITTLE)
    little_bytes = spec(data_type=DataType.UINT16, byte_order=Order.LITTLE)
    assert big.decode([0x0001, 0x0002]) == 0x00010002
    assert little_words.decode([0x0001, 0x0002]) == 0x00020001
    assert little_bytes.decode([0x1234]) == 0x3412


def test_scale_offset_precision() -> None:
    temperature = spec(data_type=DataType.INT16, scale=0.1, precision=1)
    assert temperature.decode([0xFF38]) == -20.0
    assert spec(scale=2.0, offset=-10.0, precision=0).decode([10]) == 10
    assert isinstance(spec(scale=2.0, precision=0).decode([3]), int)


def test_bits_strings_bools() -> None:
    assert spec(data_type=DataType.BIT, bit=3).decode([0b1000]) is True
    assert spec(data_type=DataType.BIT, bit=2).decode([0b1000]) is False
    assert spec(table=Table.COIL, data_type=DataType.BOOL).decode([1]) is True
    text = spec(data_type=DataType.STRING, count=3)
    assert text.decode(text.encode("AB1")) == "AB1"
    assert text.size == 3


def test_decode_rejects_wrong_length_and_non_16bit() -> None:
    with pytest.raises(DecodeError):
        spec(data_type=DataType.UINT32).decode([1])
    with pytest.raises(DecodeError):
        spec().decode([70000])


def test_encode_errors() -> None:
    with pytest.raises(DecodeError):
        spec(data_type=DataType.BIT, bit=1).encode(True)
    with pytest.raises(DecodeError):
        spec(data_type=DataType.INT16).encode(40000)
    with pytest.raises(DecodeError):
        spec().encode("x")
    with pytest.raises(DecodeError):
        spec(data_type=DataType.STRING, count=1).encode("abc")


def test_uid_and_sizes() -> None:
    assert spec(key="power", unit_id=3).uid == "3.power"
    assert spec(data_type=DataType.FLOAT64).end == 4
    assert spec(data_type=DataType.FLOAT32).is_numeric
    assert not spec(data_type=DataType.BIT, bit=0).is_numeric


NUMERIC = [t for t in DataType if t not in (DataType.BOOL, DataType.BIT, DataType.STRING)]


@given(
    data_type=st.sampled_from(NUMERIC),
    word_order=st.sampled_from(list(Order)),
    byte_order=st.sampled_from(list(Order)),
    raw=st.integers(min_value=-32768, max_value=32767),
)
def test_encode_decode_round_trip(
    data_type: DataType, word_order: Order, byte_order: Order, raw: int
) -> None:
    if data_type.value.startswith("uint"):
        raw = abs(raw)
    s = spec(data_type=data_type, word_order=word_order, byte_order=byte_order, scale=0.5)
    value = raw * 0.5
    assert s.decode(s.encode(value)) == pytest.approx(value)
