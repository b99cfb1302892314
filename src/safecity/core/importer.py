"""The one row importer: CSV (or a YAML list) read from a stream within byte, row and field limits.

Every bulk import (cameras, hot lists, the vehicle registry, face pairs) reads its file here, so a
file is never held whole in memory, a 10 GB upload stops at the byte limit, and a broken line is named
by its number. The domain validates each row and keeps "one bad line writes nothing":

    >>> rows = CsvRows(stream, limits=ImportLimits(), required=("plate", "list", "reason"))
    >>> for line, values in rows:
    ...     check(line, values)            # the domain's own validation, errors by line
    >>> rows.errors                         # structural problems: "line 7: 8 values for 6 columns"
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast

import yaml

from safecity.core.errors import InvalidInput

if TYPE_CHECKING:
    from safecity.settings import Settings

Source = str | bytes | IO[bytes] | IO[str]

_HINT_SPLIT = "split the file and import the parts one after another"


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """The largest import accepted: bytes of the file, rows, and characters of one field."""

    max_bytes: int = 100 * 1024**2
    max_rows: int = 500_000
    max_field_chars: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        """Returns the limits the `import_max_*` settings configure."""
        return cls(
            max_bytes=settings.import_max_bytes,
            max_rows=settings.import_max_rows,
            max_field_chars=settings.import_max_field_chars,
        )


class _CappedReader(io.RawIOBase):
    """A binary stream that refuses to be read past `max_bytes`."""

    def __init__(self, source: IO[bytes], max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.source.read(min(len(buffer), self.max_bytes + 1 - self.read_so_far))
        self.read_so_far += len(chunk)
        if self.read_so_far > self.max_bytes:
            raise InvalidInput(
                f"the file is larger than {_size(self.max_bytes)}, the import limit", hint=_HINT_SPLIT
            )
        buffer[: len(chunk)] = chunk
        return len(chunk)


def text_stream(source: Source, *, max_bytes: int) -> IO[str]:
    """Returns `source` as UTF-8 text (byte-order mark dropped) that raises InvalidInput past `max_bytes`."""
    if isinstance(source, str):
        source = source.encode("utf-8")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source.read(0), str):
        binary: IO[bytes] = _TextAsBytes(cast(IO[str], source))  # type: ignore[assignment]
    else:
        binary = cast(IO[bytes], source)
    capped = io.BufferedReader(_CappedReader(binary, max_bytes))
    return io.TextIOWrapper(capped, encoding="utf-8-sig", errors="strict", newline="")


class _TextAsBytes(io.RawIOBase):
    """A text stream read as UTF-8 bytes, so text and binary sources share one capped path."""

    def __init__(self, source: IO[str]) -> None:
        self.source = source
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            text = self.source.read(1 << 16)
            if not text:
                return 0
            self.pending = text.encode("utf-8")
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


class CsvRows:
    """The data rows of a CSV stream as (line, {column: value}), read lazily within `limits`.

    Header names are stripped (and lower-cased unless `lower_header` is False); values are stripped.
    Blank lines are skipped; a line with more values than columns is named in `errors` and skipped. A
    fatal problem (not UTF-8, a field or the file over its limit, too many rows, broken quoting) raises
    InvalidInput naming the line, so the caller writes nothing.
    """

    def __init__(
        self,
        source: Source,
        *,
        limits: ImportLimits = ImportLimits(),
        required: Iterable[str] = (),
        lower_header: bool = True,
        hint: str = "",
    ) -> None:
        self.limits = limits
        self.errors: list[str] = []
        # The csv module's field limit is process-wide; every import sets the same configured one.
        csv.field_size_limit(limits.max_field_chars)
        self._reader = csv.reader(text_stream(source, max_bytes=limits.max_bytes), strict=True)
        header = self._next()
        if header is None:
            raise InvalidInput("the file is empty", hint=hint or "start with a header row naming the columns")
        self.header = [h.strip().lower() if lower_header else h.strip() for h in header]
        repeated = sorted({h for h in self.header if h and self.header.count(h) > 1})
        if repeated:
            raise InvalidInput(
                f"line 1: the header repeats {', '.join(repeated)}", hint="name each column once"
            )
        missing = [c for c in required if c not in self.header]
        if missing:
            raise InvalidInput(
                f"the header row lacks the column(s) {', '.join(missing)}",
                hint=hint or f"the first line must name the columns: {', '.join(required)}",
            )

    @property
    def line(self) -> int:
        """The line the reader has reached (the last line of the row read last)."""
        return self._reader.line_num

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        rows = 0
        while (values := self._next()) is not None:
            if not any(v.strip() for v in values):
                continue
            rows += 1
            if rows > self.limits.max_rows:
                raise InvalidInput(
                    f"line {self.line}: the file holds more than {self.limits.max_rows:,} rows, the limit",
                    hint=_HINT_SPLIT,
                )
            if len(values) > len(self.header):
                self.errors.append(
                    f"line {self.line}: {len(values)} values for {len(self.header)} columns "
                    "(a comma inside a value needs quotes)"
                )
                continue
            padded = [*values, *[""] * (len(self.header) - len(values))]
            yield self.line, {k: v.strip() for k, v in zip(self.header, padded, strict=True) if k}

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            line = self._reader.line_num
            if "field larger" in str(exc):
                raise InvalidInput(
                    f"line {line}: a field is longer than {self.limits.max_field_chars:,} characters "
                    "(the limit)",
                    hint="shorten the value, or close the quote that runs on from that line",
                ) from None
            if "end of data" in str(exc):
                raise InvalidInput(
                    f"line {line}: a quoted value is never closed", hint="close the quote that opens there"
                ) from None
            raise InvalidInput(
                f"line {line}: the CSV cannot be read ({exc})", hint="check its quotes"
            ) from None
        except UnicodeDecodeError:
            raise InvalidInput(
                f"the file is not UTF-8 text (near line {self._reader.line_num + 1})",
                hint="save it as UTF-8 CSV",
            ) from None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few aliased lines can stand for billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise InvalidInput(
                f"line {event.start_mark.line + 1}: the YAML uses an alias (*{event.anchor})",
                hint="write each value out in full",
            )
        return super().compose_node(parent, index)


def yaml_list(source: Source, *, key: str, limits: ImportLimits = ImportLimits()) -> list[tuple[int, Any]]:
    """Returns the items of a YAML list (or of the list under `key`) as (position, item), within `limits`."""
    try:
        data = yaml.load(text_stream(source, max_bytes=limits.max_bytes), Loader=_NoAliasLoader)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"the YAML file cannot be parsed: {exc}", hint="check its indentation") from None
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", hint="save it as UTF-8 YAML") from None
    if data is None:
        return []
    if isinstance(data, dict):
        data = data.get(key, [])
    if not isinstance(data, list):
        raise InvalidInput(
            f"the YAML file must hold a list (or a '{key}:' list)", hint=f"start with '{key}:'"
        )
    if len(data) > limits.max_rows:
        raise InvalidInput(
            f"the file holds {len(data):,} items; the limit is {limits.max_rows:,}", hint=_HINT_SPLIT
        )
    return list(enumerate(data, start=1))


def _size(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 1024:.3g} KB"
