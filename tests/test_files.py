"""Reading document files: YAML 1.1 traps, several documents per file, syntax errors with lines."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from engine.files import (
    MAX_VALUES,
    DocumentSyntaxError,
    UnreadableFileError,
    load_and_validate,
    load_files,
    parse_text,
    read_documents,
)
from schemas.documents import Schedule

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

STG = """\
kind: schedule
service: example-cluster/example-service-stg
windows:
  - days: mon-fri
    start: 05:00
    end: 22:00
holidays: [NO, JP]
"""


def one(text: str) -> object:
    items, problems = parse_text(text, source="a.yaml")
    assert problems == []
    assert len(items) == 1
    return items[0][2]


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------------------------
# YAML 1.1 traps


def test_unquoted_time_stays_text_not_sexagesimal() -> None:
    raw = one(STG)
    assert isinstance(raw, dict)
    assert raw["windows"][0]["start"] == "05:00"
    assert raw["windows"][0]["end"] == "22:00"


@pytest.mark.parametrize(
    ("written", "meant"),
    [("0500", "05:00"), ("900", "09:00"), ("5", "05:00"), ("1730", "17:30"), ("0", "00:00")],
)
def test_a_time_written_as_a_number_gets_the_time_it_looks_like(
    tmp_path: Path, written: str, meant: str
) -> None:
    # teiji reads an unquoted 05:00 as text; 0500 (no colon) is the number 500.
    text = STG.replace("start: 05:00", f"start: {written}")
    assert text != STG
    _, problems = load_and_validate([write(tmp_path, "stg.yaml", text)])
    [problem] = problems
    assert problem.path == "windows[0].start"
    assert f'got the number {int(written)}; if you meant {meant}, write "{meant}"' in str(problem)


def test_an_unquoted_time_needs_no_hint(tmp_path: Path) -> None:
    docs, problems = load_and_validate([write(tmp_path, "stg.yaml", STG)])
    assert not problems
    assert docs.schedules["example-cluster/example-service-stg"].windows[0].start == "05:00"


def test_norway_stays_a_country_code() -> None:
    raw = one(STG)
    assert isinstance(raw, dict)
    assert raw["holidays"] == ["NO", "JP"]


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "NO", "ON", "y", "n"])
def test_yaml_11_boolean_words_stay_text(word: str) -> None:
    assert one(f"value: {word}") == {"value": word}


@pytest.mark.parametrize(("word", "value"), [("true", True), ("False", False), ("TRUE", True)])
def test_only_true_and_false_are_booleans(word: str, value: bool) -> None:
    assert one(f"value: {word}") == {"value": value}


def test_on_as_a_key_stays_text() -> None:
    assert one("on: 1") == {"on": 1}


@pytest.mark.parametrize(
    ("text", "value"),
    [("012", 12), ("0o17", 15), ("0x1F", 31), ("-3", -3), ("1.5", 1.5), ("1e3", 1000.0)],
)
def test_numbers_follow_yaml_12(text: str, value: object) -> None:
    assert one(f"value: {text}") == {"value": value}


def test_base_60_looking_values_stay_text() -> None:
    assert one("a: 1:20:30\nb: 190:20:30.15") == {"a": "1:20:30", "b": "190:20:30.15"}


def test_dates_and_timestamps_are_read_as_yaml_reads_them() -> None:
    raw = one("d: 2026-12-29\nt: 2026-12-01T23:30:00+09:00")
    assert isinstance(raw, dict)
    assert raw["d"] == date(2026, 12, 29)
    assert isinstance(raw["t"], datetime) and raw["t"].utcoffset() is not None


def test_the_same_file_validates() -> None:
    items, _ = parse_text(STG, source="stg.yaml")
    docs, problems = load_items(items)
    assert problems == []
    schedule = docs.schedules["example-cluster/example-service-stg"]
    assert isinstance(schedule, Schedule)
    assert schedule.windows[0].start_minute == 300
    assert schedule.holidays == ["NO", "JP"]


def load_items(items: list[tuple[str, int, object]]) -> tuple[object, list[str]]:
    from schemas.validation import validate_documents

    docs, problems = validate_documents(items, now=NOW)
    return docs, [str(p) for p in problems]


# --------------------------------------------------------------------------------------------
# Documents in a file


def test_several_yaml_documents_lists_and_empty_documents() -> None:
    text = "---\nkind: calendar\nname: a\n---\n---\n- kind: calendar\n  name: b\n- 5\n"
    items, problems = parse_text(text, source="f.yaml")
    assert problems == []
    assert items == [
        ("f.yaml", 1, {"kind": "calendar", "name": "a"}),
        ("f.yaml", 2, {"kind": "calendar", "name": "b"}),
        ("f.yaml", 3, 5),
    ]


def test_json_file(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.json", '[{"kind": "calendar", "name": "a", "dates": []}]')
    assert load_files([path]) == [(path, 1, {"kind": "calendar", "name": "a", "dates": []})]


def test_empty_file_is_a_problem() -> None:
    _, problems = parse_text("# only a comment\n", source="f.yaml")
    assert [str(p) for p in problems] == [
        "f.yaml: document 1: -: the file holds no documents (expected documents with kind: "
        "schedule, calendar or override)"
    ]


# --------------------------------------------------------------------------------------------
# Syntax errors


def test_yaml_syntax_error_has_line_and_column() -> None:
    text = "kind: schedule\nservice: a/b\nwindows: [\n  {days: mon, start: '05:00'\nmode: x\n"
    items, problems = parse_text(text, source="f.yaml")
    assert items == []
    assert len(problems) == 1
    line = str(problems[0])
    assert line.startswith("f.yaml: document 1: -: YAML syntax error at line 5, column 1: ")
    assert "expected ',' or '}'" in line


def test_syntax_error_in_a_later_document_names_it() -> None:
    text = "kind: calendar\nname: a\n---\nkind: calendar\nname: b: c\n"
    items, problems = parse_text(text, source="f.yaml")
    assert [i[1] for i in items] == [1]
    assert str(problems[0]).startswith("f.yaml: document 2: -: YAML syntax error at line 5")


def test_tab_indentation() -> None:
    _, problems = parse_text("kind: schedule\n\tservice: a/b\n", source="f.yaml")
    assert "YAML syntax error at line 2, column 1" in str(problems[0])


def test_duplicate_key_is_an_error_with_line() -> None:
    text = "kind: schedule\nservice: a/b\nmode: always_on\nmode: always_off\n"
    _, problems = parse_text(text, source="f.yaml")
    assert [str(p) for p in problems] == [
        "f.yaml: document 1: -: YAML syntax error at line 4, column 1: while reading a "
        "mapping, found the key 'mode' twice"
    ]


def test_merge_keys_may_repeat_a_merged_key() -> None:
    text = "base: &b {days: mon, start: '05:00'}\nw: {<<: *b, start: '06:00'}\n"
    assert one(text) == {
        "base": {"days": "mon", "start": "05:00"},
        "w": {"days": "mon", "start": "06:00"},
    }


def test_json_syntax_error_has_line_and_column() -> None:
    _, problems = parse_text('{"kind": "calendar",\n "name": }', source="f.json", json_format=True)
    assert [str(p) for p in problems] == [
        "f.json: document 1: -: JSON syntax error at line 2, column 10: Expecting value"
    ]


def test_json_duplicate_key() -> None:
    _, problems = parse_text('{"a": 1, "a": 2}', source="f.json", json_format=True)
    assert [p.message for p in problems] == ["JSON error: the key 'a' appears twice in one object"]


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, prev in zip("bcdefg", "abcdef", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    items, problems = parse_text("\n".join(lines), source="f.yaml")
    assert items == []
    assert [p.message for p in problems] == [
        f"more than {MAX_VALUES} values (counting each use of a YAML alias); split it into "
        "smaller documents"
    ]


def test_deep_nesting() -> None:
    _, problems = parse_text("[" * 5000, source="f.yaml")
    assert len(problems) == 1 and problems[0].source == "f.yaml"


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.yaml", "name: caf\xe9\n".encode("latin-1"))
    items, problems = read_documents([path])
    assert items == []
    assert [p.message for p in problems] == ["not UTF-8 text (byte 0xe9 at offset 9)"]


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.yaml", "\ufeffkind: calendar\nname: a\n".encode())
    assert load_files([path]) == [(path, 1, {"kind": "calendar", "name": "a"})]


def test_load_files_raises_on_syntax_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "a: [")
    with pytest.raises(DocumentSyntaxError) as caught:
        load_files([path])
    assert caught.value.problems[0].source == path


# --------------------------------------------------------------------------------------------
# Paths


def test_missing_file() -> None:
    with pytest.raises(UnreadableFileError, match=r"^cannot read nope\.yaml: no such file$"):
        read_documents(["nope.yaml"])


def test_directory_stands_for_its_document_files(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "kind: calendar\nname: b\n")
    write(tmp_path, "a.yaml", "kind: calendar\nname: a\n")
    write(tmp_path, "notes.txt", "not a document")
    items = load_files([str(tmp_path)])
    assert [(Path(s).name, raw) for s, _, raw in items] == [
        ("a.yaml", {"kind": "calendar", "name": "a"}),
        ("b.yml", {"kind": "calendar", "name": "b"}),
    ]


def test_directory_without_documents(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"a directory without \.yaml, \.yml or \.json"):
        read_documents([str(tmp_path)])


def test_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("kind: calendar\nname: a\n"))
    assert load_files(["-"]) == [("<stdin>", 1, {"kind": "calendar", "name": "a"})]


def test_load_and_validate_reports_syntax_then_validation(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "a: [")
    typo = write(tmp_path, "typo.yaml", "kind: calendar\nname: company\ndate: [2026-12-29]\n")
    good = write(tmp_path, "stg.yaml", STG)
    docs, problems = load_and_validate([bad, typo, good], now=NOW)
    assert [p.source for p in problems] == [bad, typo]
    assert str(problems[1]) == (
        f"{typo}: calendar company: date: unknown field 'date' (did you mean 'dates'? "
        "allowed: kind, name, dates, ranges, description)"
    )
    assert list(docs.schedules) == ["example-cluster/example-service-stg"]


def test_impossible_date_stays_text_for_validation_to_name() -> None:
    items, problems = parse_text(
        "kind: calendar\nname: company\ndates: [2026-02-30]\n", source="c.yaml"
    )
    assert problems == []
    assert items[0][2] == {"kind": "calendar", "name": "company", "dates": ["2026-02-30"]}
    _, found = load_items(items)
    assert found == [
        "c.yaml: calendar company: dates[0]: expected a date such as 2026-12-29, got the text "
        "'2026-02-30'"
    ]
