"""Specification of the one streaming row importer (core/importer.py) and of the imports built on it.

Issue 16: CSV imports had no cap, and a CSV field over 131,072 characters (the csv module's default
limit) was a 500. Every limit here is the importer's own, and each refusal names the line.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from safecity.anpr.models import HotlistEntry
from safecity.cameras.models import Camera
from safecity.challans.models import Vehicle
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.core.importer import CsvRows, ImportLimits, yaml_list
from safecity.server import create_app
from safecity.settings import Settings
from tests.conftest import auth_headers


def rows_of(source: Any, **options: Any) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    reader = CsvRows(source, **options)
    return list(reader), reader.errors


class Endless(io.RawIOBase):
    """A stream that never ends: `a,b` then `1,2` lines for ever."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = (b"a,b\n" + b"1,2\n" * len(buffer))[: len(buffer)]
        buffer[: len(data)] = data
        return len(data)


def test_rows_come_with_their_line_numbers_and_bad_lines_are_named() -> None:
    text = "\ufeffPlate , List\nABC, stolen\n\n,\nX,Y,Z\nQ\n"
    rows, errors = rows_of(text)
    assert rows == [(2, {"plate": "ABC", "list": "stolen"}), (6, {"plate": "Q", "list": ""})]
    assert errors == ["line 5: 3 values for 2 columns (a comma inside a value needs quotes)"]


def test_a_quoted_value_may_span_lines() -> None:
    rows, _ = rows_of('a,b\n1,"two\nlines"\n3,4\n')
    assert rows == [(3, {"a": "1", "b": "two\nlines"}), (4, {"a": "3", "b": "4"})]


def test_bytes_text_and_binary_or_text_streams_read_alike() -> None:
    text = "a,b\n1,2\n"
    expected = [(2, {"a": "1", "b": "2"})]
    for source in (text, text.encode(), io.BytesIO(text.encode()), io.StringIO(text)):
        assert rows_of(source)[0] == expected


def test_a_field_over_the_limit_is_refused_naming_its_line() -> None:
    text = "a,b\n1,2\n3," + "x" * 200 + "\n5,6\n"
    with pytest.raises(InvalidInput, match=r"^line 3: a field is longer than 100 characters \(the limit\)"):
        rows_of(text, limits=ImportLimits(max_field_chars=100))


def test_the_csv_field_of_issue_16_is_refused_not_a_crash() -> None:
    text = "plate,list,reason\nABC123,stolen," + "x" * 131_073 + "\n"
    with pytest.raises(InvalidInput, match=r"^line 2: a field is longer than 10,000 characters"):
        rows_of(text)


def test_a_never_ending_stream_stops_at_the_byte_limit() -> None:
    with pytest.raises(InvalidInput, match=r"^the file is larger than 64 KB, the import limit"):
        rows_of(io.BufferedReader(Endless()), limits=ImportLimits(max_bytes=64 * 1024))


def test_more_rows_than_the_limit_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^line 4: the file holds more than 2 rows, the limit"):
        rows_of("a\n1\n2\n3\n", limits=ImportLimits(max_rows=2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"a,b\n1,\xff\xfe\n", "the file is not UTF-8 text"),
        (b"", "the file is empty"),
        (b"a,b,a\n1,2,3\n", "line 1: the header repeats a"),
        (b'a,b\n1,"never closed\n3,4\n', "line 3: a quoted value is never closed"),
        (b'a,b\n1,"x"y\n', "line 2: the CSV cannot be read"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_saying_why(text: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        rows_of(text)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"^the header row lacks the column\(s\) owner, cnic"):
        rows_of("plate\nABC\n", required=("plate", "owner", "cnic"))


def test_yaml_lists_are_read_within_limits_and_without_aliases() -> None:
    assert yaml_list("cameras:\n - {id: a}\n - {id: b}\n", key="cameras") == [
        (1, {"id": "a"}),
        (2, {"id": "b"}),
    ]
    assert yaml_list("- 1\n- 2\n", key="cameras") == [(1, 1), (2, 2)]
    assert yaml_list("", key="cameras") == []
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\ncameras: [*b]\n"
    with pytest.raises(InvalidInput, match=r"^line 2: the YAML uses an alias \(\*a\)"):
        yaml_list(laughs, key="cameras")
    with pytest.raises(InvalidInput, match=r"^the file holds 3 items; the limit is 2"):
        yaml_list("[1, 2, 3]", key="cameras", limits=ImportLimits(max_rows=2))
    with pytest.raises(InvalidInput, match="must hold a list"):
        yaml_list("cameras: 7", key="cameras")
    with pytest.raises(InvalidInput, match="cannot be parsed"):
        yaml_list("cameras: [", key="cameras")


cells = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=20).map(
    str.strip
)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(st.lists(cells, min_size=3, max_size=3), max_size=15))
def test_what_csv_writes_the_importer_reads_back(table: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["a", "b", "c"])
    writer.writerows(table)
    rows, errors = rows_of(out.getvalue())
    assert errors == []
    assert [list(values.values()) for _, values in rows] == [r for r in table if any(r)]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_read_or_refused_with_invalid_input(data: bytes) -> None:
    try:
        rows, _ = rows_of(data, limits=ImportLimits(max_bytes=300, max_rows=5, max_field_chars=100))
    except InvalidInput:
        return
    assert len(rows) <= 5


# --- the imports built on it ----------------------------------------------------------------------


@pytest.fixture
def small_limits_client(tmp_path: Path) -> Any:
    context = Context.create(
        Settings(data_dir=tmp_path / "data", import_max_rows=3, import_max_bytes=16 * 1024)
    )
    with TestClient(create_app(context)) as client:
        yield context, client, auth_headers(context, "admin")
    context.db.dispose()


def test_each_import_refuses_a_long_field_over_http_naming_the_line(
    ctx: Context, client: TestClient, admin: dict[str, str]
) -> None:
    long = "x" * 140_000
    hotlist = f"plate,list,reason\nABC123,stolen,FIR 1\nDEF456,stolen,{long}\n"
    registry = f"plate,owner,cnic,address,make,colour\nABC123,{long},42101-1234567-1,x,y,z\n"
    cameras = f"id,name,kind,district,latitude,longitude\nc1,{long},fixed,South,24.8,67.0\n"
    for url, content, line in (
        ("/api/plates/hotlist/import", hotlist, 3),
        ("/api/challans/registry/import", registry, 2),
        ("/api/cameras/import", cameras, 2),
    ):
        res = client.post(url, headers=admin, files={"file": ("import.csv", content, "text/csv")})
        assert res.status_code == 422, (url, res.text)
        assert res.json()["detail"].startswith(f"line {line}: a field is longer than 10,000 characters"), url
    with ctx.db.session() as session:
        for model in (HotlistEntry, Vehicle, Camera):
            assert session.scalar(select(func.count()).select_from(model)) == 0  # nothing half-written


def test_each_import_refuses_more_rows_or_bytes_than_configured(small_limits_client: Any) -> None:
    context, client, admin = small_limits_client
    rows = "".join(f"KHI{i:04d},stolen,FIR {i}\n" for i in range(4))
    res = client.post(
        "/api/plates/hotlist/import",
        headers=admin,
        files={"file": ("list.csv", "plate,list,reason\n" + rows, "text/csv")},
    )
    assert (
        res.status_code == 422
        and res.json()["detail"] == "line 5: the file holds more than 3 rows, the limit"
    )
    big = "id,name\n" + f"c1,{'x' * 9_000}\n" * 2
    res = client.post("/api/cameras/import", headers=admin, files={"file": ("cams.csv", big, "text/csv")})
    assert (
        res.status_code == 422 and res.json()["detail"] == "the file is larger than 16 KB, the import limit"
    )
    yaml_cams = "cameras:\n" + "  - {id: c1}\n" * 4
    res = client.post(
        "/api/cameras/import", headers=admin, files={"file": ("c.yaml", yaml_cams, "text/yaml")}
    )
    assert res.status_code == 422 and res.json()["detail"] == "the file holds 4 items; the limit is 3"
    with context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(HotlistEntry)) == 0


def test_a_hotlist_file_that_is_not_utf8_is_a_clear_422(client: TestClient, admin: dict[str, str]) -> None:
    content = "plate,list,reason\nABC123,stolen,Fälschung\n".encode("latin-1")
    res = client.post(
        "/api/plates/hotlist/import", headers=admin, files={"file": ("list.csv", content, "text/csv")}
    )
    assert res.status_code == 422 and res.json()["detail"].startswith("the file is not UTF-8 text")
    assert res.json()["hint"] == "save it as UTF-8 CSV"


def test_a_hotlist_header_with_an_unknown_column_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    content = "plate,list,reason,colour\nABC123,stolen,FIR 1,red\n"
    res = client.post(
        "/api/plates/hotlist/import", headers=admin, files={"file": ("list.csv", content, "text/csv")}
    )
    assert res.status_code == 422 and res.json()["detail"] == "line 1: unknown column(s) colour"
