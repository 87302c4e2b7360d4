"""Split a CSV body into records and name the ones that cannot be split, without a Python loop.

A CSV reader that stops at the first bad row loses a night's file to one `"Rajiv Anand"x`; one that
guesses (pyarrow keeps `Rajiv Anandx`, and an unterminated quote swallows every row up to the next
quote) invents or loses rows. This module decides, for every line, which record it belongs to and
whether that record is well formed (RFC 4180: a field is unquoted text without `"`, or `"…"` with
`""` for a quote, and may then span lines), so the well-formed records can go to a fast CSV parser
and the rest to quarantine, each with its line number and one of these problems:

| problem | example (header `a,b,c`) |
|---|---|
| `too_many_fields` | `1,2,3,4` |
| `too_few_fields` | `1,2` |
| `stray_quote` | `1,"Rajiv Anand"x,3` · `1,Raj"iv,3` · `1, "2",3` |
| `unterminated_quote` | `1,"Rajiv,3` followed by lines that do not close it into one record |

A quoted value may span lines (`1,"12 Main St⏎Pune",3`). A line that opens a quote starts such a
record only if the record closes within `MAX_RECORD_LINES` lines, well formed, with the header's
field count; otherwise that line alone is quarantined (`unterminated_quote`) and the next line
starts afresh, so an unterminated quote never swallows the good rows after it. Whether a line opens
a good record depends only on the lines after it (up to the first line that would end or break the
quoted value), so every line is decided in one vectorised pass over byte offsets in numpy (quote
parity, see `_classify`); polars' CSV reader then splits the good records. Empty lines between
records are skipped (they hold no data); an empty line inside a quoted value is part of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

MAX_RECORD_LINES = 100
"""A quoted value spanning more lines than this is taken for an unterminated quote."""

_NEWLINE, _QUOTE, _CR = 0x0A, 0x22, 0x0D

PROBLEMS = ("too_many_fields", "too_few_fields", "stray_quote", "unterminated_quote")
"""What can be wrong with one record (see the table above)."""


@dataclass(frozen=True)
class Records:
    """The records of a CSV body in file order (one array entry per record) and the bad ones."""

    line: np.ndarray
    """int64: 1-based line of the file on which each record starts."""
    start: np.ndarray
    """int64: byte offset of each record in the data."""
    stop: np.ndarray
    """int64: byte offset just past each record, its line terminator included."""
    good: np.ndarray
    """bool: the record is well formed and has the header's field count."""
    malformed: pl.DataFrame
    """The other records: `record` (0-based index), `line`, `problem` (one of `PROBLEMS`) and
    `text` (the record's one line, terminator removed)."""

    def __len__(self) -> int:
        return len(self.line)


@dataclass(frozen=True)
class _Lines:
    """Byte ranges of the lines of a body (offsets relative to its first byte)."""

    start: np.ndarray  # first byte
    stop: np.ndarray  # just past the line terminator (== next start)
    end: np.ndarray  # just past the content (before "\r\n" or "\n")

    @classmethod
    def of(cls, body: np.ndarray) -> _Lines:
        newlines = np.flatnonzero(body == _NEWLINE)
        start = np.concatenate(([0], newlines + 1)).astype(np.int64)
        if start[-1] == len(body):  # a terminated last line is not followed by an empty one
            start = start[:-1]
        if not len(start):
            return cls(start=start, stop=start, end=start)
        stop = np.append(start[1:], len(body)).astype(np.int64)
        end = stop - (body[stop - 1] == _NEWLINE)
        end = end - ((end > start) & (body[np.maximum(end - 1, 0)] == _CR))
        return cls(start=start, stop=stop, end=end)

    def __len__(self) -> int:
        return len(self.start)


@dataclass(frozen=True)
class _Classes:
    """Per line: how it reads outside a quote, and inside one (continuing a quoted value)."""

    complete: np.ndarray  # outside: well formed, every quote closed: a whole record
    opens: np.ndarray  # outside: well formed up to a quote left open at the end
    stays: np.ndarray  # inside: well formed, and the quote is open again at the end
    closes: np.ndarray  # inside: well formed, and the quote is closed at the end
    fields: np.ndarray  # outside: separators outside quotes + 1 (a complete line's fields)
    fields_after: np.ndarray  # inside: separators outside quotes (fields it adds)


def split_records(
    data: bytes,
    begin: int,
    separator: str,
    n_fields: int,
    *,
    first_line: int = 2,
    max_lines: int = MAX_RECORD_LINES,
) -> Records:
    """The records of `data[begin:]`, a CSV body in valid UTF-8 whose header has `n_fields` fields.

    `first_line` is the file's line number of `data[begin]` (2 after a one-line header).
    """
    body = np.frombuffer(data, dtype=np.uint8)[begin:]
    lines = _Lines.of(body)
    if not len(lines):
        return _no_records()
    if len(separator) != 1 or separator in '"\r\n':
        raise ValueError(f"unsupported CSV separator {separator!r}")
    classes = _classify(body, lines, separator)
    spans = _good_spans(classes, n_fields, max_lines)
    inside = _inside_before(spans, classes.stays)
    blank = lines.end == lines.start

    first = ~inside & ~blank  # the lines on which records start
    starts = np.flatnonzero(first)
    members = np.flatnonzero(first | inside)  # blank lines between records belong to none
    record = (np.cumsum(first) - 1)[members]
    last = members[np.append(record[1:] != record[:-1], True)] if len(members) else members

    code = np.zeros(len(starts), dtype=np.int8)  # 0: good, else 1 + index into PROBLEMS
    complete, opens = classes.complete[starts], classes.opens[starts]
    fields = classes.fields[starts]
    code[complete & (fields > n_fields)] = 1
    code[complete & (fields < n_fields)] = 2
    code[~complete & ~opens] = 3
    code[opens & ~spans[starts]] = 4
    bad = np.flatnonzero(code)
    malformed = pl.DataFrame(
        {
            "record": pl.Series(bad, dtype=pl.Int64),
            "line": pl.Series(starts[bad] + first_line, dtype=pl.Int64),
            "problem": pl.Series(code[bad], dtype=pl.Int8).replace_strict(
                {i + 1: p for i, p in enumerate(PROBLEMS)}, return_dtype=pl.String
            ),
            "text": _line_text(data, begin, lines, starts[bad]),
        }
    )
    return Records(
        line=starts.astype(np.int64) + first_line,
        start=lines.start[starts] + begin,
        stop=lines.stop[last] + begin,
        good=code == 0,
        malformed=malformed,
    )


def complete_fields(line: bytes, separator: str) -> int | None:
    """The field count of `line` (no terminator) if it is one well-formed record, else None."""
    body = np.frombuffer(line, dtype=np.uint8)
    lines = _Lines.of(body)
    if len(lines) != 1 or lines.stop[0] != lines.end[0]:
        return None
    classes = _classify(body, lines, separator)
    return int(classes.fields[0]) if classes.complete[0] else None


def _no_records() -> Records:
    empty = np.zeros(0, dtype=np.int64)
    return Records(
        line=empty,
        start=empty,
        stop=empty,
        good=np.zeros(0, dtype=bool),
        malformed=pl.DataFrame(
            schema={"record": pl.Int64, "line": pl.Int64, "problem": pl.String, "text": pl.String}
        ),
    )


def _classify(body: np.ndarray, lines: _Lines, separator: str) -> _Classes:
    """Line classes from quote parity, in numpy: no regex, no per-line Python.

    Within a line, a quote preceded by an even number of quotes opens a quoted value (or is the
    second of a `""` pair); one preceded by an odd number closes it (or starts a pair). RFC 4180
    then reduces to: an "even" quote is valid at a field start or right after a quote, an "odd"
    one right before a separator, the line end or a quote; a separator with an even number of
    quotes before it is outside quotes. Read inside an open quote, the parities swap (and the line
    start is no field start). A line is well formed when all its quotes are valid; its quote
    count's parity says whether a quote is open at its end.
    """
    n = len(lines)
    sep = ord(separator)
    quotes = np.flatnonzero(body == _QUOTE)
    quote_line = np.searchsorted(lines.start, quotes, side="right") - 1
    before_line = np.searchsorted(quotes, lines.start)  # quotes before each line
    odd = (np.arange(len(quotes)) - before_line[quote_line]) % 2 == 1
    line_start = quotes == lines.start[quote_line]
    last_byte = len(body) - 1
    prev = body[np.maximum(quotes - 1, 0)]
    after = body[np.minimum(quotes + 1, last_byte)]
    at_end = quotes + 1 >= lines.end[quote_line]
    closes_ok = at_end | (after == sep) | (after == _QUOTE)
    prev_quote = ~line_start & (prev == _QUOTE)
    opens_ok_outside = line_start | (prev == sep) | prev_quote
    opens_ok_inside = (~line_start & (prev == sep)) | prev_quote
    bad_outside = np.where(odd, ~closes_ok, ~opens_ok_outside)
    bad_inside = np.where(odd, ~opens_ok_inside, ~closes_ok)
    n_quotes = np.bincount(quote_line, minlength=n)
    ok_outside = np.bincount(quote_line, weights=bad_outside, minlength=n) == 0
    ok_inside = np.bincount(quote_line, weights=bad_inside, minlength=n) == 0
    odd_count = n_quotes % 2 == 1

    # Separators inside quotes lie between an "even" quote and the next quote of its line (or the
    # line end, for a quote left open); count them through separator ranks, not per separator.
    separators = np.flatnonzero(body == sep)
    # Only line terminators lie between one line's end and the next line's start, so ranks at
    # the starts (and the body's end) count every line's separators.
    rank_start = np.searchsorted(separators, np.append(lines.start, len(body)))
    rank_end = rank_start[1:]
    rank_quote = np.searchsorted(separators, quotes)
    opening = np.flatnonzero(~odd)
    closing = opening + 1
    in_line = closing < len(quotes)
    in_line[in_line] = quote_line[closing[in_line]] == quote_line[opening[in_line]]
    region_end = np.where(
        in_line,
        rank_quote[np.minimum(closing, len(quotes) - 1)] if len(quotes) else 0,
        rank_end[quote_line[opening]],
    )
    quoted_seps = np.bincount(
        quote_line[opening], weights=region_end - rank_quote[opening], minlength=n
    ).astype(np.int64)
    all_seps = np.diff(rank_start).astype(np.int64)
    return _Classes(
        complete=ok_outside & ~odd_count,
        opens=ok_outside & odd_count,
        stays=ok_inside & ~odd_count,
        closes=ok_inside & odd_count,
        fields=all_seps - quoted_seps + 1,
        fields_after=quoted_seps,
    )


def _good_spans(classes: _Classes, n_fields: int, max_lines: int) -> np.ndarray:
    """Which lines open a good multi-line record: the first later line that does not stay inside
    the quote closes it, within `max_lines` lines, with `n_fields` fields in all."""
    n = len(classes.stays)
    index = np.arange(n)
    stop_at = np.where(~classes.stays, index, n)
    next_stop = np.append(np.minimum.accumulate(stop_at[::-1])[::-1][1:], n)
    end = np.minimum(next_stop, n - 1)
    after = np.cumsum(classes.fields_after)
    spans: np.ndarray = (
        classes.opens
        & (next_stop < n)
        & classes.closes[end]
        & (next_stop - index + 1 <= max_lines)
        & (classes.fields + after[end] - after == n_fields)
    )
    return spans


def _inside_before(spans: np.ndarray, stays: np.ndarray) -> np.ndarray:
    """Whether each line is read inside an open quote, by a prefix scan instead of a loop.

    Each line maps the state before it to the state after it: outside → inside iff it opens a
    good span, inside → inside iff it stays. The last line whose map is constant fixes the state;
    each later line that swaps (opens a span yet would not stay inside) flips it.
    """
    index = np.arange(len(spans))
    constant = spans == stays
    swaps = np.cumsum(spans & ~stays)
    last = np.maximum.accumulate(np.where(constant, index, -1))
    anchored = last >= 0
    at = np.maximum(last, 0)
    flips = swaps - np.where(anchored, swaps[at], 0)
    after = np.where(anchored, spans[at], False) ^ (flips % 2 == 1)
    return np.append(False, after[:-1])


def _line_text(data: bytes, begin: int, lines: _Lines, which: np.ndarray) -> pl.Series:
    """The content of the lines `which` (terminators removed), as a String series."""
    offsets = np.append(lines.start, lines.stop[-1]).astype(np.int64) + begin
    array = pa.LargeStringArray.from_buffers(len(lines), pa.py_buffer(offsets), pa.py_buffer(data))
    taken = pl.Series("line", array.take(pa.array(which, type=pa.int64())), dtype=pl.String)
    return taken.str.strip_suffix("\n").str.strip_suffix("\r")
