"""Recorded traces: the loader shared by the replay server and the benchmark.

A trace is a long-format CSV ``timestamp,key,value``: timestamps as Unix seconds,
Unix milliseconds or ISO 8601 (no zone: UTC); values numeric, or true/false/on/off.
An optional first row ``timestamp,key,value`` is a header; lines starting with ``#``
are comments, and ``# end <timestamp>`` states where a change-only log ends.

Rules (each one a bug found replaying real logs):

* Rows may come in any order; per key they are sorted by time, and rows with the
  same timestamp and key keep the file's order, so the **last row** of the file wins.
* Numeric timestamps above 1e11 are **Unix milliseconds** (1e11 s is the year 5138)
  and are converted to seconds; a log mixing seconds and milliseconds is refused
  with the line that switches.
* Every error names the line and the field (``timestamp``, ``key``, ``value``).

Pure Python (``array`` and ``bisect``): the engine needs no numpy; the benchmark
turns the same arrays into numpy arrays.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
import csv
import datetime as dt
import math
from pathlib import Path
from typing import Any, Final

from ..errors import AdaptiveModbusError
from ..spans import SpanError, check_span

BOOLS: Final[dict[str, float]] = {"true": 1.0, "on": 1.0, "false": 0.0, "off": 0.0}
MILLISECONDS_ABOVE: Final = 1e11
"""Numeric timestamps above this are Unix milliseconds (as seconds: year 5138)."""
FIELDS: Final = ("timestamp", "key", "value")


class TraceError(AdaptiveModbusError, ValueError):
    """The trace or its map cannot be replayed; names the line and field if known."""

    def __init__(
        self, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        """Build the message ``line N, field F: message`` from what is known."""
        self.line = line
        self.field = field
        self.reason = message
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class TimestampParser:
    """Parses timestamps, deciding once per file between Unix seconds and milliseconds."""

    def __init__(self) -> None:
        """Start undecided."""
        self.millis: bool | None = None

    def __call__(self, text: str, line: int | None) -> float:
        """Return the timestamp ``text`` of ``line`` in Unix seconds."""
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if not math.isfinite(number):
                raise TraceError(
                    f"bad timestamp {text!r}", line=line, field="timestamp"
                )
            millis = number > MILLISECONDS_ABOVE
            if self.millis is None:
                self.millis = millis
            elif millis != self.millis:
                raise TraceError(
                    f"timestamp {text!r} looks like Unix "
                    f"{'milliseconds' if millis else 'seconds'}, earlier rows were "
                    f"{'milliseconds' if self.millis else 'seconds'}",
                    line=line,
                    field="timestamp",
                )
            return number / 1000.0 if millis else number
        try:
            parsed = dt.datetime.fromisoformat(text.strip())
        except ValueError as err:
            raise TraceError(
                f"bad timestamp {text!r} (Unix seconds, milliseconds or ISO 8601)",
                line=line,
                field="timestamp",
            ) from err
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()


def parse_value(text: str, line: int | None) -> float:
    """Return the value ``text`` of ``line``: a finite number, or a boolean as 0/1."""
    lowered = text.strip().lower()
    if lowered in BOOLS:
        return BOOLS[lowered]
    try:
        value = float(lowered)
    except ValueError as err:
        raise TraceError(
            f"bad value {text!r} (a number, true/false or on/off)",
            line=line,
            field="value",
        ) from err
    if not math.isfinite(value):
        raise TraceError(f"value {text!r} is not finite", line=line, field="value")
    return value


class TraceSamples:
    """What a trace file holds.

    Per key (times, values, lines) in compact arrays in file order; the stated end,
    if any; and every row time (for gap detection).
    """

    def __init__(self) -> None:
        """Start with no series, no rows and no stated end."""
        self.series: dict[str, tuple[array[float], array[float]]] = {}
        self.lines: dict[str, array[int]] = {}
        self.row_times: array[float] = array("d")
        self.end: float | None = None

    def add(self, key: str, when: float, value: float, line: int) -> None:
        """Append one row."""
        times, values = self.series.setdefault(key, (array("d"), array("d")))
        times.append(when)
        values.append(value)
        self.lines.setdefault(key, array("I")).append(line)
        self.row_times.append(when)

    def ordered(self, key: str) -> tuple[list[float], list[float], list[int]]:
        """Return times, values and file lines of ``key``, stably sorted by time."""
        times, values = self.series[key]
        lines = self.lines[key]
        order = sorted(range(len(times)), key=times.__getitem__)
        return (
            [times[i] for i in order],
            [values[i] for i in order],
            [lines[i] for i in order],
        )

    def require(self, keys: Iterable[str]) -> None:
        """Raise :class:`TraceError` naming every key without samples."""
        missing = [key for key in keys if key not in self.series]
        if missing:
            raise TraceError(
                f"registers without samples in the trace: {', '.join(missing)}",
                field="key",
            )

    def span(self, keys: Iterable[str] | None = None) -> tuple[float, float]:
        """First and last sample time of ``keys`` (all by default), the stated end too.

        Raises :class:`TraceError` when they lie more than 400 days apart (mixed
        clocks: relative seconds among Unix timestamps).
        """
        chosen = list(self.series if keys is None else keys)
        first = min(min(self.series[key][0]) for key in chosen)
        last = max(max(self.series[key][0]) for key in chosen)
        if self.end is not None:
            if self.end < last:
                raise TraceError(
                    f"the stated end {self.end} lies before the last row {last}"
                )
            last = self.end
        try:  # a grid of one point a second over this span is built from it
            check_span(first, last, "trace timestamps")
        except SpanError as err:
            raise TraceError(str(err), field="timestamp") from err
        return first, last


def read_trace(path: Path) -> TraceSamples:
    """Parse the trace at ``path`` (see the module docstring for the rules)."""
    out = TraceSamples()
    stamp = TimestampParser()
    # per key: the bound appends of its three arrays (one dict lookup per row)
    appenders: dict[str, tuple[Any, Any, Any]] = {}
    add_row_time = out.row_times.append
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise TraceError(f"cannot read {path}: {err.strerror or err}") from err
    with handle:
        reader = csv.reader(handle)
        try:
            for line, row in enumerate(reader, start=1):
                if not row:
                    continue
                if row[0][:1] == "#" or row[0].lstrip()[:1] == "#":
                    words = ",".join(row).strip().lstrip("#").split(None, 1)
                    if len(words) == 2 and words[0].lower().rstrip(":") == "end":
                        out.end = stamp(words[1].strip(), line)
                    continue
                if line == 1 and [c.strip().lower() for c in row] == list(FIELDS):
                    continue
                if len(row) != len(FIELDS):
                    raise TraceError(
                        f"expected 3 fields timestamp,key,value, got {len(row)}",
                        line=line,
                    )
                key = row[1].strip()
                columns = appenders.get(key)
                if columns is None:
                    if not key:
                        raise TraceError("empty key", line=line, field="key")
                    out.add(key, stamp(row[0], line), parse_value(row[2], line), line)
                    times, values = out.series[key]
                    columns = (times.append, values.append, out.lines[key].append)
                    appenders[key] = columns
                    continue
                when = stamp(row[0], line)
                columns[0](when)
                columns[1](parse_value(row[2], line))
                columns[2](line)
                add_row_time(when)
        except UnicodeDecodeError as err:
            raise TraceError(f"{path}: not UTF-8 text ({err.reason})") from err
        except csv.Error as err:
            raise TraceError(str(err), line=reader.line_num) from err
    if not out.series:
        raise TraceError(f"{path}: no samples")
    return out
