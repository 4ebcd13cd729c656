"""Register specs: validation names the field; decode and encode round-trip."""

from __future__ import annotations

import math
import struct

from hypothesis import given, strategies as st
import pytest

from adaptive_modbus_engine.registers import (
    DataType,
    DecodeError,
    Order,
    RegisterSpec,
    RegisterSpecError,
    Table,
    UnitIdError,
    unit_id_range,
    validate_unit_id,
)
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from tests.engine.scripted import ReadOnlyTransport


def spec(**kwargs: object) -> RegisterSpec:
    """Return a register spec with test defaults overridden by ``kwargs``."""
    base: dict[str, object] = {
        "key": "r",
        "unit_id": 1,
        "table": Table.HOLDING,
        "address": 0,
    }
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
    """Test that an invalid spec names the field that is wrong."""
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
        (
            DataType.FLOAT64,
            list(struct.unpack(">HHHH", struct.pack(">d", -2.25))),
            -2.25,
        ),
    ],
)
def test_decode_numeric(data_type: DataType, words: list[int], expected: float) -> None:
    """Test decoding every numeric data type."""
    assert spec(data_type=data_type).decode(words) == expected


def test_word_and_byte_order() -> None:
    """Test that word and byte order are applied when decoding."""
    big = spec(data_type=DataType.UINT32)
    little_words = spec(data_type=DataType.UINT32, word_order=Order.LITTLE)
    little_bytes = spec(data_type=DataType.UINT16, byte_order=Order.LITTLE)
    assert big.decode([0x0001, 0x0002]) == 0x00010002
    assert little_words.decode([0x0001, 0x0002]) == 0x00020001
    assert little_bytes.decode([0x1234]) == 0x3412


def test_scale_offset_precision() -> None:
    """Test that scale, offset and precision apply to decoded values."""
    temperature = spec(data_type=DataType.INT16, scale=0.1, precision=1)
    assert temperature.decode([0xFF38]) == -20.0
    assert spec(scale=2.0, offset=-10.0, precision=0).decode([10]) == 10
    assert isinstance(spec(scale=2.0, precision=0).decode([3]), int)


def test_precision_is_a_display_hint_values_are_not_rounded() -> None:
    """172.25 W reaches Home Assistant as 172.25 whatever the map's precision says."""
    centi = spec(data_type=DataType.UINT32, scale=0.01, precision=1)
    assert centi.decode([0, 17225]) == 172.25
    whole = spec(data_type=DataType.FLOAT32, precision=0)
    assert whole.decode(whole.encode(172.25)) == 172.25
    half = spec(data_type=DataType.INT16, scale=0.5, precision=0)
    assert half.decode([5]) == 2.5  # half-to-even rounding made this 2
    # only the binary noise of the arithmetic goes: 3 * 0.1 is 0.3, float32 0.1 is 0.1
    assert spec(scale=0.1).decode([3]) == 0.3
    assert whole.decode(whole.encode(0.1)) == 0.1
    assert spec(data_type=DataType.UINT64, scale=2).decode([0xFFFF] * 4) == 2 * (
        2**64 - 1
    )


@pytest.mark.parametrize("data_type", [DataType.FLOAT32, DataType.FLOAT64])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_decode_to_no_value(data_type: DataType, bad: float) -> None:
    """SunSpec's NaN ("not implemented"), an idle SMA inverter's NaN, and inf are no value."""
    s = spec(data_type=data_type, scale=0.1, offset=5.0)
    words = spec(data_type=data_type).encode(bad)
    assert s.decode(words) is None
    assert spec(data_type=data_type).decode(words) is None
    # a scaled value that overflows is no value either
    assert (
        spec(data_type=DataType.FLOAT64, scale=1e300).decode(
            spec(data_type=DataType.FLOAT64).encode(1e300)
        )
        is None
    )


def test_bits_strings_bools() -> None:
    """Test decoding bits, strings and booleans."""
    assert spec(data_type=DataType.BIT, bit=3).decode([0b1000]) is True
    assert spec(data_type=DataType.BIT, bit=2).decode([0b1000]) is False
    assert spec(table=Table.COIL, data_type=DataType.BOOL).decode([1]) is True
    text = spec(data_type=DataType.STRING, count=3)
    assert text.decode(text.encode("AB1")) == "AB1"
    assert text.size == 3


def test_decode_rejects_wrong_length_and_non_16bit() -> None:
    """Test that decoding refuses the wrong word count and values over 16 bits."""
    with pytest.raises(DecodeError):
        spec(data_type=DataType.UINT32).decode([1])
    with pytest.raises(DecodeError):
        spec().decode([70000])


def test_encode_errors() -> None:
    """Test that values that cannot be written are refused when encoding."""
    with pytest.raises(DecodeError):
        spec(data_type=DataType.BIT, bit=1).encode(True)
    with pytest.raises(DecodeError):
        spec(data_type=DataType.INT16).encode(40000)
    with pytest.raises(DecodeError):
        spec().encode("x")
    with pytest.raises(DecodeError):
        spec(data_type=DataType.STRING, count=1).encode("abc")


def test_uid_and_sizes() -> None:
    """Test the uid and the register counts of specs."""
    assert spec(key="power", unit_id=3).uid == "3.power"
    assert spec(data_type=DataType.FLOAT64).end == 4
    assert spec(data_type=DataType.FLOAT32).is_numeric
    assert not spec(data_type=DataType.BIT, bit=0).is_numeric


NUMERIC = [
    t for t in DataType if t not in (DataType.BOOL, DataType.BIT, DataType.STRING)
]


@given(
    data_type=st.sampled_from(NUMERIC),
    word_order=st.sampled_from(list(Order)),
    byte_order=st.sampled_from(list(Order)),
    raw=st.integers(min_value=-32768, max_value=32767),
)
def test_encode_decode_round_trip(
    data_type: DataType, word_order: Order, byte_order: Order, raw: int
) -> None:
    """Test that encoding then decoding gives the value back."""
    if data_type.value.startswith("uint"):
        raw = abs(raw)
    s = spec(
        data_type=data_type, word_order=word_order, byte_order=byte_order, scale=0.5
    )
    value = raw * 0.5
    assert s.decode(s.encode(value)) == pytest.approx(value)


class FloatDevice(ReadOnlyTransport):
    """A scripted transport: one float32 at input address 0, set by the test."""

    def __init__(self) -> None:
        """Serve a float of 20.0 until a test changes it."""
        self.value = 20.0
        self.connected = True

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Return the float's two words."""
        hi, lo = struct.unpack(">HH", struct.pack(">f", self.value))
        return [hi, lo][address : address + count]


async def test_nan_reaches_the_engine_as_no_value_once_and_never_as_a_change() -> None:
    """Test that NaN reaches the engine as no value, once, and never as a change.

    A register that sends NaN is 'no value' (None) once; repeats are not changes,
    and the interval model never sees a change in it (its interval keeps growing).
    """
    power = spec(
        key="power", table=Table.INPUT, data_type=DataType.FLOAT32, tolerance=1.0
    )
    device, now = FloatDevice(), [1000.0]
    engine = PollEngine([power], device, lambda: now[0], EngineConfig(min_interval=5))

    async def cycle() -> dict[str, object]:
        now[0] = max(now[0], engine.next_due())
        return dict((await engine.poll_due()).changed)

    assert await cycle() == {"1.power": 20.0}
    for _ in range(3):
        await cycle()
    quiet = engine.snapshot().registers["1.power"].interval
    device.value = math.nan
    assert await cycle() == {"1.power": None}  # shown as unknown, once
    for _ in range(5):
        assert await cycle() == {}  # NaN again: no change, nothing to write
    snapshot = engine.snapshot().registers["1.power"]
    assert snapshot.value is None
    assert snapshot.interval >= quiet  # never shortened by NaN
    assert all(c.reason != "jump" for c in engine.snapshot().recent_interval_changes)
    device.value = 21.0
    assert await cycle() == {"1.power": 21.0}
    # the number after NaN starts a new baseline: no jump from 'nothing' to 21
    assert all(c.reason != "jump" for c in engine.snapshot().recent_interval_changes)


@pytest.mark.parametrize("framing", ["tcp", "udp"])
def test_unit_ids_on_modbus_tcp_are_0_to_255(framing: str) -> None:
    """Test that Modbus TCP addresses units 0-255."""
    assert unit_id_range(framing) == (0, 255)
    for unit in (0, 1, 247, 248, 255):
        assert validate_unit_id(unit, framing) == unit
    for unit in (-1, 256):
        with pytest.raises(
            UnitIdError, match=f"unit id {unit} is outside 0-255"
        ) as caught:
            validate_unit_id(unit, framing)
        assert caught.value.reason == "range"


@pytest.mark.parametrize("framing", ["serial", "rtu_over_tcp"])
def test_unit_ids_on_rtu_are_1_to_247_and_0_is_broadcast(framing: str) -> None:
    """Test that an RTU line addresses units 1-247 and refuses 0 as broadcast."""
    assert unit_id_range(framing) == (1, 247)
    for unit in (1, 247):
        assert validate_unit_id(unit, framing) == unit
    for unit in (248, 255, -1):
        with pytest.raises(UnitIdError, match="outside 1-247") as caught:
            validate_unit_id(unit, framing)
        assert (caught.value.reason, caught.value.unit_id) == ("range", unit)
    with pytest.raises(UnitIdError, match="broadcast") as caught:
        validate_unit_id(0, framing)
    assert caught.value.reason == "broadcast"
    with pytest.raises(ValueError, match="unknown framing"):
        unit_id_range("ascii")


def test_a_spec_accepts_tcp_unit_255() -> None:
    """Test that a spec accepts unit 255 (Modbus TCP)."""
    assert spec(unit_id=255).uid == "255.r"


def test_cleaning_float_noise_never_rounds_past_the_float_range() -> None:
    """Test that cleaning float noise never rounds past the float range.

    Found by the fuzz test: 15 significant digits of a value at the top of the
    float range rounded up to infinity.
    """
    value = spec(data_type=DataType.INT16, offset=1.7976931348623151e308).decode([0])
    assert value == 1.7976931348623151e308


WORD_TYPES = [t for t in DataType if t is not DataType.BOOL]


@given(
    data_type=st.sampled_from(WORD_TYPES),
    byte_order=st.sampled_from(list(Order)),
    scale=st.sampled_from([1.0, 10.0, 0.1, -2.0]),
    offset=st.sampled_from([0.0, 5.0, -0.5]),
    words=st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=0xFFFF),
            st.integers(min_value=-5, max_value=0x1_0005),
            st.booleans(),
        ),
        max_size=6,
    ),
    at=st.integers(min_value=-1, max_value=7),
)
def test_decode_at_is_decode_of_the_slice(
    *,
    data_type: DataType,
    byte_order: Order,
    scale: float,
    offset: float,
    words: list[int],
    at: int,
) -> None:
    """Test that the read path's decode_at gives decode's value, type and error."""
    kwargs: dict[str, object] = {"data_type": data_type, "byte_order": byte_order}
    if data_type is DataType.STRING:
        kwargs["count"] = 2
    elif data_type is DataType.BIT:
        kwargs["bit"] = 3
    else:
        kwargs.update(scale=scale, offset=offset)
    s = spec(**kwargs)

    def outcome(call: object) -> tuple[str, object]:
        try:
            value = call()  # type: ignore[operator]
        except DecodeError as err:
            return ("error", str(err))
        return (type(value).__name__, repr(value))

    assert outcome(lambda: s.decode_at(words, at)) == outcome(
        lambda: s.decode(words[at : at + s.size])  # what the read path sliced
    )


def test_decode_at_takes_a_word_as_it_is() -> None:
    """Test the one-word fast path on signed, unsigned and scaled words."""
    assert spec().decode_at([7, 65535, 3], 1) == 65535
    assert spec(data_type=DataType.INT16).decode_at([7, 65535], 1) == -1
    assert spec(data_type=DataType.INT16, scale=10.0).decode_at([0x8000], 0) == -327680
    assert spec(scale=0.1).decode_at([0, 3], 1) == 0.3
    assert spec(byte_order=Order.LITTLE).decode_at([0x0102], 0) == 0x0201
    with pytest.raises(DecodeError, match="not 16-bit"):
        spec().decode_at([0, 70000], 1)
    with pytest.raises(DecodeError, match="expected 1 values, got 0"):
        spec().decode_at([1, 2], 2)
