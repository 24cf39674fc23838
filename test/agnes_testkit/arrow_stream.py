"""Reads an Arrow IPC stream (what ``POST /api/v2/scan`` answers) into rows.

Standard library only, like the rest of the test kit: the project's venv has
no pyarrow. It knows the few column types the tests ask for (integers,
strings, booleans, dates, decimals, doubles), no compression and no
dictionaries; anything else raises ``ValueError`` rather than guess.

    names, rows = read_stream(reply.body)   # rows: list of tuples
"""

from __future__ import annotations

import datetime
import decimal
import struct

# The message header union (Message.fbs) and the type union (Schema.fbs).
_SCHEMA, _RECORD_BATCH = 1, 3
_INT, _FLOAT, _UTF8, _BOOL, _DECIMAL, _DATE, _LARGE_UTF8 = 2, 3, 5, 6, 7, 8, 20

_EPOCH = datetime.date(1970, 1, 1)


class _Table:
    """A flatbuffers table: fields by index, read through its vtable."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _at(self, field: int) -> int | None:
        slot = 4 + 2 * field
        if slot >= self.vtable_size:
            return None
        offset = struct.unpack_from("<H", self.buf, self.vtable + slot)[0]
        return self.pos + offset if offset else None

    def scalar(self, field: int, fmt: str, default=0):
        at = self._at(field)
        return default if at is None else struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _target(self, field: int) -> int | None:
        at = self._at(field)
        return None if at is None else at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, field: int) -> "_Table | None":
        at = self._target(field)
        return None if at is None else _Table(self.buf, at)

    def string(self, field: int) -> str:
        at = self._target(field)
        if at is None:
            return ""
        n = struct.unpack_from("<I", self.buf, at)[0]
        return self.buf[at + 4 : at + 4 + n].decode()

    def tables(self, field: int) -> list["_Table"]:
        at = self._target(field)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        items = (at + 4 + 4 * i for i in range(n))
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]) for p in items]

    def structs(self, field: int, fmt: str) -> list[tuple]:
        at = self._target(field)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        size = struct.calcsize("<" + fmt)
        return [struct.unpack_from("<" + fmt, self.buf, at + 4 + i * size) for i in range(n)]


def _messages(data: bytes):
    """Each message of the stream: its header table and its body."""
    pos = 0
    while pos + 4 <= len(data):
        size = struct.unpack_from("<i", data, pos)[0]
        pos += 4
        if size == -1:  # the continuation marker before each length
            size = struct.unpack_from("<i", data, pos)[0]
            pos += 4
        if size == 0:  # end of stream
            return
        meta = data[pos : pos + size]
        pos += size
        message = _Table(meta, struct.unpack_from("<I", meta, 0)[0])
        body_len = message.scalar(3, "q")
        yield message, data[pos : pos + body_len]
        pos += body_len


def _column_reader(field: _Table):
    """How many buffers one field has in a batch (validity first), and a
    function (row count, validity, other buffers) -> its values."""
    kind, spec = field.scalar(2, "B"), field.table(3)
    if field.table(4) is not None:
        raise ValueError(f"column {field.string(0)!r}: dictionaries are not supported")
    if kind == _INT:
        width, signed = spec.scalar(0, "i"), spec.scalar(1, "?", False)
        code = {8: "b", 16: "h", 32: "i", 64: "q"}[width]
        code = code if signed else code.upper()
        return 2, _fixed(code)
    if kind == _FLOAT:
        return 2, _fixed({1: "f", 2: "d"}[spec.scalar(0, "h")])
    if kind == _DATE:
        if spec.scalar(0, "h", 1) != 0:
            raise ValueError(f"column {field.string(0)!r}: only DAY dates are supported")
        return 2, _mapped(_fixed("i"), lambda days: _EPOCH + datetime.timedelta(days=days))
    if kind == _DECIMAL:
        if spec.scalar(2, "i", 128) != 128:
            raise ValueError(f"column {field.string(0)!r}: only 128-bit decimals are supported")
        return 2, _decimal(spec.scalar(1, "i"))
    if kind in (_UTF8, _LARGE_UTF8):
        return 3, _strings("i" if kind == _UTF8 else "q")
    if kind == _BOOL:
        return 2, _bools
    raise ValueError(f"column {field.string(0)!r}: Arrow type {kind} is not supported")


def _valid(validity: bytes, n: int) -> list[bool]:
    if not validity:
        return [True] * n
    return [bool(validity[i >> 3] >> (i & 7) & 1) for i in range(n)]


def _fixed(code: str):
    def read(n, validity, buffers):
        values = struct.unpack_from(f"<{n}{code}", buffers[0]) if n else ()
        return [v if ok else None for v, ok in zip(values, _valid(validity, n))]

    return read


def _mapped(inner, convert):
    def read(n, validity, buffers):
        return [None if v is None else convert(v) for v in inner(n, validity, buffers)]

    return read


def _decimal(scale: int):
    def read(n, validity, buffers):
        raw = buffers[0]
        values = [
            decimal.Decimal(int.from_bytes(raw[16 * i : 16 * i + 16], "little", signed=True))
            .scaleb(-scale)
            for i in range(n)
        ]
        return [v if ok else None for v, ok in zip(values, _valid(validity, n))]

    return read


def _strings(offset_code: str):
    def read(n, validity, buffers):
        offsets = struct.unpack_from(f"<{n + 1}{offset_code}", buffers[0])
        values = [buffers[1][offsets[i] : offsets[i + 1]].decode() for i in range(n)]
        return [v if ok else None for v, ok in zip(values, _valid(validity, n))]

    return read


def _bools(n, validity, buffers):
    return [v if ok else None for v, ok in zip(_valid(buffers[0], n), _valid(validity, n))]


def read_stream(data: bytes) -> tuple[list[str], list[tuple]]:
    """The column names and the rows of an Arrow IPC stream."""
    names, readers, columns = None, None, None
    for message, body in _messages(data):
        header_type, header = message.scalar(1, "B"), message.table(2)
        if header_type == _SCHEMA:
            fields = header.tables(1)
            names = [f.string(0) for f in fields]
            readers = [_column_reader(f) for f in fields]
            columns = [[] for _ in fields]
        elif header_type == _RECORD_BATCH:
            if readers is None:
                raise ValueError("a record batch before the schema")
            if header.table(3) is not None:
                raise ValueError("compressed record batches are not supported")
            nodes = header.structs(1, "qq")
            buffers = [body[off : off + size] for off, size in header.structs(2, "qq")]
            for (length, _nulls), (count, read), column in zip(nodes, readers, columns):
                own, buffers = buffers[:count], buffers[count:]
                column.extend(read(length, own[0], own[1:]))
        else:
            raise ValueError(f"message type {header_type} is not supported")
    if names is None:
        raise ValueError("no schema in the stream")
    return names, list(zip(*columns))
