"""Contact lists in CSV, parsed as they stream in: rows, problems with their line numbers, clear refusals."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, time

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as phone_zones

from core.errors import InvalidInput
from dialer.calling_window import CallingPolicy, WeeklyHours, callee_location
from dialer.contact_import import (
    ContactField,
    ContactImportError,
    ContactParser,
    ContactRow,
    ImportEvent,
    ImportNotice,
    ImportOptions,
    NoticeKind,
    ProblemKind,
    RowProblem,
    normalise_number,
    parse_contacts,
)
from dialer.do_not_call import DoNotCallLists, InMemoryNumberList

NO_LISTS = DoNotCallLists(InMemoryNumberList.of([]), InMemoryNumberList.of([]))


def parse(
    data: bytes,
    options: ImportOptions | None = None,
    lists: DoNotCallLists | None = None,
    chunk: int = 64 * 1024,
) -> list[ImportEvent]:
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return list(parse_contacts(chunks, options or ImportOptions(default_region="ES"), do_not_call=lists))


def rows(events: list[ImportEvent]) -> list[ContactRow]:
    return [event for event in events if isinstance(event, ContactRow)]


def problems(events: list[ImportEvent]) -> list[tuple[int, ProblemKind]]:
    return [(event.line, event.kind) for event in events if isinstance(event, RowProblem)]


def notices(events: list[ImportEvent]) -> list[ImportNotice]:
    return [event for event in events if isinstance(event, ImportNotice)]


SPANISH = (
    "\ufeffTeléfono;Nombre;Correo;Idioma;Zona horaria;ID cliente;Segmento;Notas\r\n"
    '+34 612 345 678;"García; Ana";ANA@Example.com;es_es;;C-1;oro;"llamar\npor la tarde"\r\n'
    "612345678;Ana otra vez;;;;C-2;;\r\n"
    "\r\n"
    ";;;;;;;\r\n"
    "910 000 001;Luis;luis@example;;;C-3;;\r\n"
    "910 000 002;Eva;;klingon;;C-4;;\r\n"
    "910 000 003;Pau;;;Europe/Atlantis;C-5;;\r\n"
    "910 000 004;Marta;;ca;Atlantic/Canary;C-6;plata;\r\n"
    "910 000 005;Sin notas;;;;C-7;\r\n"
    "12;Corto;;;;C-8;;\r\n"
    ";Sin teléfono;;;;C-9;;\r\n"
    "910 000 006;Lista;;;;C-10;;\r\n"
    "910 000 007;Campaña;;;;C-11;;\r\n"
).encode()


def test_a_spanish_export_is_read_with_every_row_accounted_for() -> None:
    lists = DoNotCallLists(InMemoryNumberList.of(["+34910000006"]), InMemoryNumberList.of(["+34910000007"]))
    parser = ContactParser(ImportOptions(default_region="ES"), do_not_call=lists)
    data = SPANISH
    events = [*parser.feed(data[:100]), *parser.feed(data[100:]), *parser.close()]

    [unknown] = notices(events)
    assert unknown.kind is NoticeKind.UNKNOWN_COLUMNS and unknown.columns == ("Segmento", "Notas")
    first, canary = rows(events)
    assert (first.row, first.line, first.phone, first.region) == (1, 2, "+34612345678", "ES")
    assert first.time_zones == ("Atlantic/Canary", "Europe/Madrid") and not first.explicit_time_zone
    assert (first.name, first.email, first.language, first.external_id) == (
        "García; Ana",
        "ana@example.com",
        "es-ES",
        "C-1",
    )
    assert first.attributes == {"Segmento": "oro", "Notas": "llamar\npor la tarde"}
    assert (canary.line, canary.time_zones, canary.explicit_time_zone, canary.language) == (
        10,
        ("Atlantic/Canary",),
        True,
        "ca",
    )
    assert problems(events) == [
        (4, ProblemKind.DUPLICATE),
        (7, ProblemKind.INVALID_FIELD),  # the email
        (8, ProblemKind.INVALID_FIELD),  # the language
        (9, ProblemKind.INVALID_FIELD),  # the time zone
        (11, ProblemKind.BROKEN_ROW),  # 7 fields for 8 columns
        (12, ProblemKind.INVALID_NUMBER),
        (13, ProblemKind.MISSING_NUMBER),
        (14, ProblemKind.DO_NOT_CALL),
        (15, ProblemKind.DO_NOT_CALL),
    ]
    by_line = {event.line: event for event in events if isinstance(event, RowProblem)}
    assert by_line[4].message == "+34612345678 is already on line 2" and by_line[4].contact is not None
    assert by_line[7].column == "Correo" and "not an email address" in by_line[7].message
    assert "unknown time zone 'Europe/Atlantis'" in by_line[9].message
    assert by_line[11].message == "7 fields where the header has 8 fields"
    assert by_line[14].message == "+34910000006 is on the global list of numbers not to call"
    assert by_line[15].message == "+34910000007 is on this campaign's list of numbers not to call"
    assert by_line[15].contact is not None and by_line[15].contact.name == "Campaña"

    summary = parser.summary
    assert (summary.encoding, summary.delimiter, summary.rows, summary.contacts) == ("utf-8-sig", ";", 11, 2)
    assert summary.problems == {
        "duplicate": 1,
        "invalid_field": 3,
        "broken_row": 1,
        "invalid_number": 1,
        "missing_number": 1,
        "do_not_call": 2,
    }
    assert summary.mapping == {
        "Teléfono": "phone",
        "Nombre": "name",
        "Correo": "email",
        "Idioma": "language",
        "Zona horaria": "time_zone",
        "ID cliente": "external_id",
        "Segmento": "attribute",
        "Notas": "attribute",
    }


WINDOWS = "phone;name\r\n600111222;Ana\r\n600111333;José Pérez\r\n600111333;Dup\r\n".encode("cp1252")
OLD_MAC = b'phone,name,notes\r600111222,Ana,"two\rlines"\r600111333,Luis,x\r'
SAMPLES = (SPANISH, WINDOWS, OLD_MAC)


@settings(max_examples=120, deadline=None)
@given(data=st.sampled_from(SAMPLES), cuts=st.lists(st.floats(0, 1), max_size=12))
def test_the_events_do_not_depend_on_how_the_upload_is_chunked(data: bytes, cuts: list[float]) -> None:
    bounds = [0, *sorted(int(cut * len(data)) for cut in cuts), len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert list(parse_contacts(chunks, ImportOptions(default_region="ES"))) == parse(data)


@pytest.mark.parametrize("data", SAMPLES)
def test_byte_by_byte_is_the_same_as_whole(data: bytes) -> None:
    whole = parse(data)
    assert parse(data, chunk=1) == whole and rows(whole)


def test_an_explicit_mapping_and_dropped_columns() -> None:
    data = b"Movil,Cliente,Notas,Ruido\n600111222,Ana,vip,x\n"
    options = ImportOptions(
        default_region="ES",
        columns={"Movil": ContactField.PHONE, "Cliente": ContactField.NAME, "Ruido": None},
        keep_unknown_columns=False,
    )
    events = parse(data, options)
    [contact] = rows(events)
    assert (contact.phone, contact.name, contact.attributes) == ("+34600111222", "Ana", {})
    [notice] = notices(events)
    assert notice.columns == ("Notas",) and "ignored" in notice.message


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        (b"phone,name\n600111222,Ana\n", ","),
        (b"phone;name\n600111222;Ana\n", ";"),
        (b"phone\tname\n600111222\tAna\n", "\t"),
        (b"phone\n600111222\n", ","),
    ],
)
def test_the_delimiter_is_found_in_the_header(data: bytes, delimiter: str) -> None:
    parser = ContactParser(ImportOptions(default_region="ES"))
    events = [*parser.feed(data), *parser.close()]
    assert parser.summary.delimiter == delimiter
    assert [contact.phone for contact in rows(events)] == ["+34600111222"]


def test_old_mac_line_endings_and_a_last_line_without_one() -> None:
    events = parse(b"phone,name\r600111222,Ana\r600111333,Luis")
    assert [(contact.line, contact.name) for contact in rows(events)] == [(2, "Ana"), (3, "Luis")]


def test_a_field_longer_than_the_customer_record_holds() -> None:
    data = f"phone,name,notes\n600111222,{'A' * 201},ok\n600111333,Ana,{'n' * 1001}\n".encode()
    events = parse(data)
    assert problems(events) == [(2, ProblemKind.FIELD_TOO_LONG), (3, ProblemKind.FIELD_TOO_LONG)]
    first, second = (event for event in events if isinstance(event, RowProblem))
    assert first.column == "name" and "201 characters (at most 200)" in first.message
    assert second.column == "notes" and len(second.value or "") == 100


def test_numbers_without_a_callable_time_zone_are_reported() -> None:
    data = b"phone\n+34500000000\n+18885550123\n+34910000000\n"
    assert problems(parse(data)) == [(2, ProblemKind.NO_CALLABLE_TIME_ZONE)]  # a zone nobody knows
    # A toll-free +1 number may ring anywhere from Guam to Newfoundland: 09:00-10:00 never holds in all.
    narrow = CallingPolicy(callee_hours=WeeklyHours.every_day(time(9), time(10)))
    options = ImportOptions(default_region="ES", calling=narrow, now=datetime(2025, 6, 2, tzinfo=UTC))
    events = parse(data, options)
    assert problems(events) == [
        (2, ProblemKind.NO_CALLABLE_TIME_ZONE),
        (3, ProblemKind.NO_CALLABLE_TIME_ZONE),
    ]
    assert "and 37 more" in next(e.message for e in events if isinstance(e, RowProblem) and e.line == 3)
    assert [contact.phone for contact in rows(events)] == ["+34910000000"]


# --- encodings -------------------------------------------------------------------------------------


def test_a_windows_1252_file_is_read_with_a_notice_from_the_first_line_that_is_not_utf8() -> None:
    data = "phone,name\n600111222,Ana\n600111333,José Pérez\n600111444,Müller\n".encode("cp1252")
    parser = ContactParser(ImportOptions(default_region="ES"))
    events = [*parser.feed(data), *parser.close()]
    [notice] = notices(events)
    assert notice.kind is NoticeKind.ENCODING_FALLBACK and notice.line == 3 and "cp1252" in notice.message
    assert [contact.name for contact in rows(events)] == ["Ana", "José Pérez", "Müller"]
    assert parser.summary.encoding == "cp1252"


def test_a_file_that_is_not_utf8_can_be_refused_instead() -> None:
    data = "phone,name\n600111222,Ana\n600111333,José\n".encode("cp1252")
    with pytest.raises(ContactImportError, match=r"not UTF-8: save it as 'CSV UTF-8' \(line 3, byte 38\)"):
        parse(data, ImportOptions(default_region="ES", fallback_encoding=None))


def test_a_broken_byte_after_utf8_text_breaks_only_its_row() -> None:
    data = "phone,name\n600111222,José\n".encode() + b"600111333,Jos\xe9\n" + b"600111444,Eva\n"
    events = parse(data)
    assert [contact.name for contact in rows(events)] == ["José", "Eva"]
    [broken] = [event for event in events if isinstance(event, RowProblem)]
    assert broken.line == 3 and broken.kind is ProblemKind.BROKEN_ROW and "not utf-8 text" in broken.message


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00rest of a workbook", "Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old Excel workbook"),
        ("phone,name\n".encode("utf-16"), "UTF-16"),
        (b"%PDF-1.7\n", "PDF"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip"),
    ],
)
def test_files_that_are_not_csv_are_named(data: bytes, what: str) -> None:
    with pytest.raises(ContactImportError, match=what):
        parse(data)


# --- garbage ---------------------------------------------------------------------------------------


def test_binary_data_stops_the_import_where_it_is() -> None:
    data = b"phone,name\n600111222,Ana\n600\x00111333,Luis\n"
    with pytest.raises(ContactImportError, match=r"binary data .* \(line 3, byte 28\)"):
        parse(data)


def test_ten_gigabytes_without_a_newline_stop_after_a_bounded_read() -> None:
    read = 0

    def endless() -> Iterator[bytes]:
        nonlocal read
        yield b"phone,name\n600111222,Ana\n"
        while read < 10 * 2**30:
            read += 2**20
            yield b"a" * 2**20

    parser = ContactParser(ImportOptions(default_region="ES"))
    with pytest.raises(ContactImportError, match=r"longer than 65536 bytes.*\(line 3, byte 25\)"):
        for chunk in endless():
            parser.feed(chunk)
    assert read <= 2**20  # the first megabyte was enough to know


def test_rows_of_garbage_stop_after_a_bounded_number() -> None:
    rng = random.Random(1)
    garbage = b"\n".join(
        bytes(rng.choice(range(32, 256)) for _ in range(40)).replace(b",", b"") for _ in range(500)
    )
    options = ImportOptions(default_region="ES", max_consecutive_broken_rows=50)
    with pytest.raises(ContactImportError, match="50 broken rows in a row"):
        parse(b"phone,name\n" + garbage, options)


def test_a_quote_never_closed_is_a_broken_row_at_the_end_or_an_error_when_it_runs_on() -> None:
    events = parse(b'phone,name\n600111222,Ana\n600111333,"Luis\n')
    assert [contact.name for contact in rows(events)] == ["Ana"]
    assert problems(events) == [(3, ProblemKind.BROKEN_ROW)]
    runaway = b'phone,name\n600111222,"Ana\n' + b"more text\n" * 10_000
    with pytest.raises(ContactImportError, match=r"quoted field opened here is not closed .* \(line 2\)"):
        parse(runaway, chunk=4096)


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (b"", None, "the file is empty"),
        (b"\xef\xbb\xbf", None, "the file is empty"),
        (b"name,email\nAna,ana@example.com\n", None, r"no phone column in the header \(name, email\)"),
        (b"phone,name,name\n", None, "names a column twice: name"),
        # The dialer keeps its notes (a preview reservation) under this key of the contact's attributes.
        (b"phone,@dialer\n", None, "'@dialer' is reserved"),
        (b"phone,mobile\n", None, "columns 'phone' and 'mobile' are both the phone"),
        (
            b"phone\n",
            ImportOptions(columns={"Movil": ContactField.PHONE}),
            "mapped columns not in the header: Movil",
        ),
    ],
)
def test_headers_that_cannot_be_read_are_refused_clearly(
    data: bytes, options: ImportOptions | None, message: str
) -> None:
    with pytest.raises(ContactImportError, match=message) as caught:
        parse(data, options)
    assert isinstance(caught.value, InvalidInput)


def test_a_closed_parser_refuses_more_data() -> None:
    parser = ContactParser()
    parser.feed(b"phone\n600111222\n")
    parser.close()
    assert parser.close() == []
    with pytest.raises(RuntimeError):
        parser.feed(b"600111333\n")


# --- phone numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+34 612 345 678", "ES", "+34612345678"),
        ("612-34-56-78", "ES", "+34612345678"),
        ("0034 612 345 678", "ES", "+34612345678"),
        ("00 44 20 7946 0000", "ES", "+442079460000"),
        ("011 34 612 345 678", "US", "+34612345678"),
        ("34612345678", "ES", "+34612345678"),
        ("(212) 555-0100", "US", "+12125550100"),
        ("1 212 555 0100", "US", "+12125550100"),
        ("020 7946 0000", "GB", "+442079460000"),
        ("+39 06 1234 5678", "ES", "+390612345678"),  # Rome keeps its leading zero
        ("tel:+34612345678", "ES", "+34612345678"),
    ],
)
def test_numbers_in_every_usual_form_become_e164(raw: str, region: str, e164: str) -> None:
    phone = normalise_number(raw, region)
    assert not isinstance(phone, str) and phone.e164 == e164


def test_normalised_numbers_match_phonenumbers_and_the_dial_time_location() -> None:
    # The import builds plain numbers without the parser: it must agree with it, and with what the
    # dialer computes at dial time, or a contact's zone would change between import and call.
    rng = random.Random(11)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    checked = 0
    for region in regions:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            continue
        national = phonenumbers.national_significant_number(example)
        for _ in range(6):
            cut = rng.randint(0, len(national))
            digits = national[: len(national) - cut] + "".join(rng.choice("0123456789") for _ in range(cut))
            default = rng.choice([region, "ES", "US"])
            for raw in (
                f"+{example.country_code}{digits}",
                f"+{example.country_code} {digits}",
                digits,
                "0" + digits,
                # Dialled from abroad: the prefix is read without the parser, as a +.
                f"00{example.country_code} {digits}",
                f"011{example.country_code}{digits}",
                f"000{digits}",
            ):
                got = normalise_number(raw, default)
                try:
                    parsed = phonenumbers.parse(raw, default)
                    possible = phonenumbers.is_possible_number(parsed)
                except phonenumbers.NumberParseException:
                    possible = False
                if not possible:
                    assert isinstance(got, str), raw
                    continue
                assert not isinstance(got, str), raw
                e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                zones = tuple(
                    sorted(z for z in phone_zones.time_zones_for_number(parsed) if z != "Etc/Unknown")
                )
                assert (got.e164, got.zones) == (e164, zones), raw
                location = callee_location(got.e164)
                assert (location.region, location.zones) == (got.region, got.zones), raw
                checked += 1
    assert checked > 1000


def test_the_same_number_twice_in_any_form_is_a_duplicate() -> None:
    data = b"phone\n+34 612 345 678\n612345678\n0034612345678\n+34612345678\n"
    events = parse(data)
    assert len(rows(events)) == 1
    assert problems(events) == [
        (3, ProblemKind.DUPLICATE),
        (4, ProblemKind.DUPLICATE),
        (5, ProblemKind.DUPLICATE),
    ]


def test_a_large_list_streams_through_with_its_counts_right() -> None:
    def generated() -> Iterator[bytes]:
        yield b"phone,name,segment\n"
        for start in range(0, 20_000, 1000):
            yield "".join(f"+3461{n:07d},Contact {n},s{n % 7}\n" for n in range(start, start + 1000)).encode()
        yield b"+34610000000,Again,s0\n"

    parser = ContactParser(ImportOptions(default_region="ES"))
    events: list[ImportEvent] = []
    for chunk in generated():
        events += parser.feed(chunk)
    events += parser.close()
    assert len(rows(events)) == 20_000 and problems(events) == [(20_002, ProblemKind.DUPLICATE)]
    assert (parser.summary.rows, parser.summary.contacts) == (20_001, 20_000)
