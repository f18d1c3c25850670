"""PostgreSQL bulk reads as binary `COPY`, decoded to Arrow with numpy.

The text form of `COPY` makes the server format every float and timestamp and the client parse
them again; the binary form sends the stored bytes. A binary row is a field count, then a length
and the bytes of each field, so rows of one layout (the same field lengths: the same text lengths
and NULLs) have one size. Rows come in runs of one layout (a symbol's bars, symbols of equal
length), and each run decodes as one numpy structured array: the Python work is per run, not
per row. A row of another layout is found exactly: the first field whose length differs has its
length header at the same offset in both layouts.

Decoded types: text (string), float8 (double), int2/int4/int8 (int64) and timestamptz
(timestamp[us, UTC]); `decodable` says whether a result's columns are all of them. The result
matches what Arrow's CSV reader makes of the text form: NULL text is "", a column of only NULLs
has Arrow's null type; only a stored float NaN stays NaN where the CSV reader makes it null (in
pandas both are NaN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01, PostgreSQL's timestamp zero, in Unix microseconds
TEXT = {25, 1042, 1043}  # text, bpchar, varchar
FIXED = {701: ">f8", 20: ">i8", 23: ">i4", 21: ">i2"}  # float8, int8, int4, int2
TIMESTAMPTZ = 1184
_FORMATS = {**FIXED, TIMESTAMPTZ: ">i8"}  # microseconds since PG_EPOCH_US
_INFINITY = (2**63 - 1, -(2**63))  # how PostgreSQL stores 'infinity' / '-infinity'
_BLOCK = 16_384  # rows decoded together (about 2 MB of raw_ohlc rows)
# the Python work is per run: when runs are this short, the CSV form is faster
_MIN_RUNS, _MIN_RUN_ROWS = 512, 16


class Undecodable(Exception):
    """The data holds something this decoder does not turn into the text form's result."""


def decodable(columns: list[tuple[str, int]], timestamps) -> bool:
    """Whether every (name, type oid) is decoded here (timestamptz only where named in `timestamps`)."""
    names = [name for name, _ in columns]
    return (
        bool(columns)
        and len(set(names)) == len(names)
        and all(
            oid in TEXT or oid in FIXED or (oid == TIMESTAMPTZ and name in timestamps)
            for name, oid in columns
        )
    )


def copy_bytes(raw, statement: bytes) -> bytearray:
    """Every byte a `COPY ... TO STDOUT` statement sends, on psycopg connection `raw`, in the
    caller's transaction. libpq hands the data over a row at a time; psycopg's `Copy` object waits
    on each row through its generator machinery, which costs more than the server's work here, so
    this reads through the documented libpq wrapper (`raw.pgconn`) in one tight loop."""
    from psycopg import errors, pq

    pgconn = raw.pgconn
    encoding = raw.info.encoding
    pgconn.send_query(statement)  # raises psycopg.OperationalError when it cannot be sent
    result = pgconn.get_result()  # blocking libpq calls: they flush the query and wait for data
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _drain(pgconn)
        raise (
            errors.error_from_result(result, encoding=encoding)
            if result
            else errors.OperationalError("COPY returned no result")
        )
    buffer = bytearray()
    get = pgconn.get_copy_data
    while (received := get(0))[0] >= 0:
        buffer += received[1]
    final = pgconn.get_result()
    _drain(pgconn)
    if final is None or final.status != pq.ExecStatus.COMMAND_OK:
        raise (
            errors.error_from_result(final, encoding=encoding)
            if final
            else errors.OperationalError("COPY ended without a result")
        )
    return buffer


def _drain(pgconn) -> None:
    while pgconn.get_result() is not None:
        pass


def decode(data: bytes | bytearray, columns: list[tuple[str, int]]) -> pa.Table:
    """The rows of a binary `COPY` of `columns` ((name, type oid), all `decodable`) as Arrow."""
    import numpy as np

    if not data.startswith(SIGNATURE):
        raise Undecodable("not a binary COPY stream")
    position = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, header extension
    end = len(data) - 2  # the trailer: a field count of -1
    if data[end:] != b"\xff\xff":
        raise Undecodable("no trailer")
    runs: list[tuple[int, tuple[int, ...], np.ndarray]] = []  # (rows, field lengths, rows' array)
    count, rows = 256, 0
    while position < end:
        if len(runs) >= _MIN_RUNS and rows < _MIN_RUN_ROWS * len(runs):
            raise Undecodable("the rows change layout too often (a text column that varies per row)")
        lengths = _layout(data, position, len(columns))
        dtype = _row_dtype(lengths, columns)
        count = _run_length(data, position, dtype, lengths, end, max(count, 256))
        runs.append((count, lengths, np.frombuffer(data, dtype, count=count, offset=position)))
        position += count * dtype.itemsize
        rows += count
    if position != end:
        raise Undecodable("rows do not end at the trailer")
    return _table(runs, columns)


def _layout(data: bytes, position: int, width: int) -> tuple[int, ...]:
    """Field lengths of the row at `position` (-1 for NULL)."""
    if int.from_bytes(data[position : position + 2], "big", signed=True) != width:
        raise Undecodable("unexpected field count")
    position += 2
    lengths = []
    for _ in range(width):
        length = int.from_bytes(data[position : position + 4], "big", signed=True)
        lengths.append(length)
        position += 4 + max(length, 0)
    return tuple(lengths)


def _row_dtype(lengths: tuple[int, ...], columns: list[tuple[str, int]]) -> np.dtype:
    import numpy as np

    names, formats, offsets = ["n"], [">i2"], [0]
    offset = 2
    for i, (length, (_, oid)) in enumerate(zip(lengths, columns, strict=True)):
        names.append(f"l{i}")
        formats.append(">i4")
        offsets.append(offset)
        offset += 4
        if length < 0 or (length == 0 and oid in TEXT):
            continue  # NULL, or an empty string: no bytes
        value = f"S{length}" if oid in TEXT else _FORMATS[oid]
        if np.dtype(value).itemsize != length:
            raise Undecodable(f"a value of {length} bytes for type {oid}")
        names.append(f"v{i}")
        formats.append(value)
        offsets.append(offset)
        offset += length
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})


def _run_length(
    data: bytes, position: int, dtype: np.dtype, lengths: tuple[int, ...], end: int, first_block: int
) -> int:
    """How many rows from `position` on have `lengths`; probed in growing blocks, the first as long
    as the previous run (runs tend to repeat), so a run costs a few numpy calls however long."""
    import numpy as np

    available = (end - position) // dtype.itemsize
    run, block = 0, first_block
    while run < available:
        take = min(block, available - run)
        rows = np.frombuffer(data, dtype, count=take, offset=position + run * dtype.itemsize)
        same = rows["n"] == len(lengths)
        for i, length in enumerate(lengths):
            same &= rows[f"l{i}"] == length
        if not same.all():
            return run + int(np.argmin(same))
        run += take
        block *= 2
    return run


def _table(runs, columns: list[tuple[str, int]]) -> pa.Table:
    """Columns from the runs, filled a block of rows at a time: each column's strided pass over a
    block finds it in the cache, instead of every column reading the whole buffer again."""
    import numpy as np
    import pyarrow as pa

    total = sum(count for count, _, _ in runs)
    texts = {i: ([], np.zeros(total, np.int64)) for i, (_, oid) in enumerate(columns) if oid in TEXT}
    numbers = {
        i: (np.zeros(total, np.float64 if oid == 701 else np.int64), np.ones(total, bool))
        for i, (_, oid) in enumerate(columns)
        if oid not in TEXT
    }
    start = 0
    for count, lengths, rows in runs:
        for first in range(0, count, _BLOCK):
            block = rows[first : first + _BLOCK]
            at = slice(start + first, start + first + len(block))
            for i, (chunks, sizes) in texts.items():
                if lengths[i] > 0:
                    chunks.append(block[f"v{i}"].tobytes())
                    sizes[at] = lengths[i]
            for i, (values, valid) in numbers.items():
                if lengths[i] < 0:
                    valid[at] = False
                else:
                    values[at] = block[f"v{i}"]
        start += count
    arrays = {}
    for i, (name, oid) in enumerate(columns):
        if oid != TIMESTAMPTZ and all(lengths[i] < 0 for _, lengths, _ in runs):
            arrays[name] = pa.nulls(total)  # as the CSV reader types a column of empty fields (or none)
        elif i in texts:
            arrays[name] = _strings(*texts[i])
        else:
            arrays[name] = _numbers(*numbers[i], oid)
    return pa.table(arrays)


def _strings(chunks: list[bytes], sizes: np.ndarray) -> pa.Array:
    """A text column; NULL as "" (what the CSV reader makes of an empty field in a text column)."""
    import numpy as np
    import pyarrow as pa

    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    values = pa.py_buffer(b"".join(chunks))
    if offsets[-1] < 2**31:
        array = pa.StringArray.from_buffers(len(sizes), pa.py_buffer(offsets.astype(np.int32)), values)
    else:
        array = pa.LargeStringArray.from_buffers(len(sizes), pa.py_buffer(offsets), values)
    array.validate(full=True)  # UTF-8
    return array


def _numbers(values: np.ndarray, valid: np.ndarray, oid: int) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    mask = None if valid.all() else ~valid
    if oid != TIMESTAMPTZ:
        return pa.array(values, mask=mask)
    if np.isin(values[valid], _INFINITY).any():
        raise Undecodable("infinite timestamp")
    return pa.array(values + PG_EPOCH_US, type=pa.timestamp("us", tz="UTC"), mask=mask)
