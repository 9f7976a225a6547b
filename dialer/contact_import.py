"""A contact list in CSV, parsed as it streams in: normalised contacts, and a problem for each bad row.

Push-style and pure, so it serves a sync iterator and an async upload alike, and never holds more than
one chunk plus one unfinished line:

    parser = ContactParser(ImportOptions(default_region="ES"), do_not_call=lists)
    async for chunk in request.stream():
        for event in parser.feed(chunk):
            ...  # ContactRow -> load it; RowProblem -> report it; ImportNotice -> report it once
    for event in parser.close():
        ...
    parser.summary  # counts, encoding, delimiter, columns

(`parse_contacts(chunks, options)` does the same over an iterable of chunks.) What stops the whole
import raises `ContactImportError` with the line and byte where it happened: a binary file or a
spreadsheet, UTF-16, a line longer than `max_line_bytes` (10 GB without a newline stops after 64 KiB), a
quoted field never closed, a header without a phone column, `max_consecutive_broken_rows` broken rows in
a row. Everything else is a `RowProblem` with its line, and the import goes on.

Encoding: UTF-8, with or without a byte-order mark. A file that is not UTF-8 is read as Windows-1252
(what Excel writes on Windows; Latin-1 is the same for letters) from the first line that is not, with
a notice; the lines before it were plain ASCII, which reads the same either way. A line that breaks
UTF-8 after UTF-8 letters were seen is a broken row, not a reason to guess. `fallback_encoding=None`
refuses a file that is not UTF-8 instead.

Memory: one chunk, the unfinished line, and one entry per distinct valid number (for duplicates).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from operator import gt

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber

from core.errors import InvalidInput
from core.text_folding import fold
from dialer.calling_window import (
    CalleeLocation,
    CallingPolicy,
    calling_decision,
    load_zone,
    zones_for_national,
    zones_for_number,
)
from dialer.do_not_call import DialBlock, DoNotCallLists


class ContactField(StrEnum):
    PHONE = "phone"
    NAME = "name"
    EMAIL = "email"
    LANGUAGE = "language"
    TIME_ZONE = "time_zone"
    EXTERNAL_ID = "external_id"


class ProblemKind(StrEnum):
    BROKEN_ROW = "broken_row"  # wrong number of fields, or bytes that are not text in the file's encoding
    FIELD_TOO_LONG = "field_too_long"
    MISSING_NUMBER = "missing_number"
    INVALID_NUMBER = "invalid_number"
    INVALID_FIELD = "invalid_field"  # an email, language or time zone that is not one
    DUPLICATE = "duplicate"  # the same number earlier in the file
    NO_CALLABLE_TIME_ZONE = "no_callable_time_zone"  # zone unknown, or its hours never allow a call
    DO_NOT_CALL = "do_not_call"


class NoticeKind(StrEnum):
    ENCODING_FALLBACK = "encoding_fallback"
    UNKNOWN_COLUMNS = "unknown_columns"
    UNNAMED_COLUMNS = "unnamed_columns"


# Header names, folded (case, accents) with spaces, dashes and dots as "_", that map to a field.
HEADER_ALIASES: Mapping[str, ContactField] = {
    **dict.fromkeys(
        (
            "phone", "phone_number", "telephone", "telephone_number", "tel", "mobile", "mobile_phone",
            "mobile_number", "cell", "cellphone", "cell_phone", "number", "msisdn", "e164", "telefono",
            "movil", "numero", "celular", "numero_de_telefono",
        ),
        ContactField.PHONE,
    ),
    **dict.fromkeys(
        ("name", "full_name", "customer_name", "contact_name", "nombre", "nombre_completo"),
        ContactField.NAME,
    ),
    **dict.fromkeys(
        ("email", "e_mail", "mail", "email_address", "correo", "correo_electronico"), ContactField.EMAIL
    ),
    **dict.fromkeys(
        ("language", "lang", "locale", "preferred_language", "idioma"), ContactField.LANGUAGE
    ),
    **dict.fromkeys(
        ("time_zone", "timezone", "tz", "zona_horaria", "huso_horario"), ContactField.TIME_ZONE
    ),
    **dict.fromkeys(
        (
            "external_id", "id", "customer_id", "client_id", "crm_id", "account_id", "reference",
            "id_cliente", "cliente_id",
        ),
        ContactField.EXTERNAL_ID,
    ),
}  # fmt: skip

# What the customer record can hold (core.customers.models).
_FIELD_LIMITS: Mapping[ContactField, int] = {
    ContactField.NAME: 200,
    ContactField.EMAIL: 320,
    ContactField.EXTERNAL_ID: 320,
    ContactField.LANGUAGE: 16,
    ContactField.TIME_ZONE: 64,
    ContactField.PHONE: 64,
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # as core.customers.identities: the mail server judges
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}))?$")
_HEADER_SEPARATORS = re.compile(r"[\s_\-.]+")
_DELIMITERS = (",", ";", "\t", "|")

# Files that are not text, by their first bytes: say what they are rather than "broken row" a million times.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx): export it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls): export it as CSV"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive: upload it uncompressed"),
    (b"\xff\xfe", "UTF-16 text: save it as 'CSV UTF-8'"),
    (b"\xfe\xff", "UTF-16 text: save it as 'CSV UTF-8'"),
)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ImportOptions:
    default_region: str = "ES"  # numbers written without a country code are read in this country
    delimiter: str | None = None  # None: the most frequent of , ; tab | in the header line
    # Header name (as written in the file) -> field, or None to ignore the column. Columns not named
    # here are found by their usual names (HEADER_ALIASES); the rest are kept as attributes.
    columns: Mapping[str, ContactField | None] | None = None
    keep_unknown_columns: bool = True  # as the contact's attributes; else dropped (reported either way)
    fallback_encoding: str | None = "cp1252"
    max_line_bytes: int = 64 * 1024
    max_field_chars: int = 1000
    max_consecutive_broken_rows: int = 1000
    # With both, a number whose zones never allow a call under `calling` (e.g. hours that never
    # overlap across its zones) is reported; without, only an unknown zone is.
    calling: CallingPolicy | None = None
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class ContactRow:
    row: int  # 1 = the first row after the header (blank lines are not counted)
    line: int  # the physical line the row starts on, 1 = the header: what a spreadsheet shows
    phone: str  # E.164
    region: str | None  # the number's country (ISO 3166-1 alpha-2)
    time_zones: tuple[str, ...]  # the explicit zone, or every zone the number may be in
    explicit_time_zone: bool
    name: str | None
    email: str | None
    language: str | None
    external_id: str | None
    attributes: dict[str, str]  # the other columns, by header name; empty values left out


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    line: int
    kind: ProblemKind
    message: str
    column: str | None = None  # the header name of the field at fault
    value: str | None = None  # the raw value at fault (cut to 100 characters)
    # The parsed contact for problems that are about the number's use, not its form (duplicate, DNC,
    # time zone): the caller may still want the customer on file.
    contact: ContactRow | None = None


@dataclass(frozen=True, slots=True)
class ImportNotice:
    kind: NoticeKind
    message: str
    line: int | None = None
    columns: tuple[str, ...] = ()


ImportEvent = ContactRow | RowProblem | ImportNotice


@dataclass(slots=True)
class ImportSummary:
    encoding: str = "utf-8"
    delimiter: str | None = None
    header: tuple[str, ...] = ()
    mapping: dict[str, str] = field(default_factory=dict)  # header -> field or "attribute"
    rows: int = 0
    contacts: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0


class ContactImportError(InvalidInput):
    """The file cannot be read as a contact list at all; the message says where and why."""

    def __init__(self, message: str, *, line: int | None = None, byte_offset: int | None = None) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if byte_offset is not None:
            where.append(f"byte {byte_offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.line = line
        self.byte_offset = byte_offset


@dataclass(frozen=True, slots=True)
class NormalisedNumber:
    e164: str
    region: str | None
    zones: tuple[str, ...]


class ContactParser:
    def __init__(
        self, options: ImportOptions | None = None, *, do_not_call: DoNotCallLists | None = None
    ) -> None:
        self.options = options or ImportOptions()
        if self.options.max_line_bytes < 1024:
            raise ValueError("max_line_bytes below 1 KiB would refuse ordinary files")
        self.do_not_call = do_not_call
        self.summary = ImportSummary()
        self._started = False
        self._closed = False
        self._head = b""  # the first bytes, until there are enough to recognise the file
        self._pending = b""  # bytes after the last newline
        self._pending_offset = 0  # where `_pending` starts in the file
        self._newline: bytes | None = None  # b"\n" (also for CRLF) or a bare b"\r" (old Macs)
        self._encoding: str | None = None  # None: only ASCII so far
        self._carry = ""  # decoded lines of a record whose quoted field is still open
        self._carry_line = 0
        self._lines_done = 0  # physical lines handed to the CSV reader
        self._bad_lines: dict[int, str] = {}  # line -> why its bytes are not text
        self._columns: _Columns | None = None
        self._seen: dict[int, int] = {}  # number as digits -> the line it was first on
        self._phones: dict[
            str, NormalisedNumber | str
        ] = {}  # raw value -> parsed, or why not (bounded cache)
        self._zones_ok: dict[tuple[str | None, tuple[str, ...]], bool] = {}
        self._broken_in_a_row = 0
        self._delimiter = ","
        self._notices: list[ImportNotice] = []  # said while decoding, handed out with the next rows
        self._failure: ContactImportError | None = None  # found after handing out the rows before it
        policy = self.options.calling
        # The import judges zones, not dates: the campaign's own schedule is the runner's business.
        self._policy = replace(policy, campaign=None) if policy is not None else None

    @property
    def phone_column(self) -> str | None:
        """The header name of the phone column; None until the header is read."""
        return self._columns.phone_name if self._columns is not None else None

    # --- the stream ---------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[ImportEvent]:
        if self._closed:
            raise RuntimeError("the parser is closed")
        if self._failure is not None:
            raise self._failure
        self.summary.bytes_read += len(chunk)
        if not self._started:
            self._head += chunk
            if len(self._head) < 8:
                return []
            chunk, self._head = self._head, b""
            chunk = self._start(chunk)
        data = self._pending + chunk
        if self._newline is None:
            self._newline = _line_ending(data)
        cut = data.rfind(self._newline) if self._newline is not None else -1
        if cut < 0:
            self._pending = data
            self._check_pending()
            return []
        complete, self._pending = data[: cut + 1], data[cut + 1 :]
        offset = self._pending_offset
        self._pending_offset += len(complete)
        events = self._process(complete, offset)
        try:
            self._check_pending()
        except ContactImportError as too_long:
            # The complete lines before it are good: hand them out now, and fail on the next call.
            self._failure = too_long
        return events

    def close(self) -> list[ImportEvent]:
        if self._closed:
            return []
        if self._failure is not None:
            raise self._failure
        events: list[ImportEvent] = []
        if not self._started:
            head, self._head = self._head, b""
            rest = self._start(head)
            self._pending = rest
        if self._pending:
            self._newline = self._newline or b"\n"
            last, self._pending = self._pending + self._newline, b""
            events = self._process(last, self._pending_offset)
        self._closed = True
        events += self._notices  # about a last record that never completed
        self._notices = []
        if self._carry:
            line = self._carry_line
            self._carry = ""
            if self._columns is None:
                raise ContactImportError("the header has a quoted name that is never closed", line=1)
            events.append(self._problem(ProblemKind.BROKEN_ROW, "a quoted field is never closed", line=line))
        if self._columns is None:
            raise ContactImportError("the file is empty: a header line with a phone column is needed")
        return events

    def _start(self, data: bytes) -> bytes:
        self._started = True
        for signature, what in _SIGNATURES:
            if data.startswith(signature):
                raise ContactImportError(f"this is not a CSV file: it looks like {what}", byte_offset=0)
        if data.startswith(_BOM):
            self._encoding = "utf-8"
            self.summary.encoding = "utf-8-sig"
            self._pending_offset = len(_BOM)
            data = data[len(_BOM) :]
        return data

    def _check_pending(self) -> None:
        if len(self._pending) > self.options.max_line_bytes:
            raise ContactImportError(
                f"a line is longer than {self.options.max_line_bytes} bytes: this is not a contact list,"
                " or its lines do not end",
                line=self._lines_done + self._carry.count("\n") + 1,
                byte_offset=self._pending_offset,
            )

    # --- bytes to records ---------------------------------------------------------------------------

    def _process(self, data: bytes, offset: int) -> list[ImportEvent]:
        nul = data.find(b"\x00")
        if nul >= 0:
            raise ContactImportError(
                "the file holds binary data (a NUL byte): this is not a CSV text file",
                line=self._lines_done
                + self._carry.count("\n")
                + data.count(self._newline or b"\n", 0, nul)
                + 1,
                byte_offset=offset + nul,
            )
        first_line = self._lines_done + 1 + self._carry.count("\n")
        text = self._decode(data, first_line, offset)
        if self._newline == b"\r":
            text = text.replace("\r", "\n")
        if self._carry:
            text = self._carry + text
            first_line = self._carry_line
            self._carry = ""
        ready, carry = _split_open_record(text)
        if carry:
            if len(carry) > self.options.max_line_bytes:
                raise ContactImportError(
                    f"a quoted field opened here is not closed within {self.options.max_line_bytes} bytes",
                    line=first_line + ready.count("\n"),
                )
            self._carry = carry
            self._carry_line = first_line + ready.count("\n")
        if not ready:
            return []
        return self._records(ready, first_line)

    def _decode(self, data: bytes, first_line: int, offset: int) -> str:
        encoding = self._encoding or "utf-8"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            return self._decode_by_line(data, first_line, offset, exc)
        if self._encoding is None and not text.isascii():
            self._encoding = "utf-8"
        return text

    def _decode_by_line(self, data: bytes, first_line: int, offset: int, error: UnicodeDecodeError) -> str:
        newline = self._newline or b"\n"
        # Only ASCII before the bad byte: the file was never UTF-8, and that ASCII reads the same in
        # the fallback. UTF-8 letters before it: the file is UTF-8 and this line is broken.
        if self._encoding is None and not data[: error.start].isascii():
            self._encoding = "utf-8"
        if self._encoding is None:
            bad_line = first_line + data.count(newline, 0, error.start)
            fallback = self.options.fallback_encoding
            if fallback is None:
                raise ContactImportError(
                    "the file is not UTF-8: save it as 'CSV UTF-8'",
                    line=bad_line,
                    byte_offset=offset + error.start,
                )
            self._encoding = fallback
            self.summary.encoding = fallback
            self._notices.append(
                ImportNotice(
                    NoticeKind.ENCODING_FALLBACK,
                    f"the file is not UTF-8 (from line {bad_line}): read as {fallback}",
                    line=bad_line,
                )
            )
            try:
                return data.decode(fallback)
            except UnicodeDecodeError:
                pass
        lines = data.split(newline)
        out = []
        for index, raw in enumerate(lines):
            try:
                out.append(raw.decode(self._encoding or "utf-8"))
            except UnicodeDecodeError as exc:
                self._bad_lines[first_line + index] = (
                    f"bytes that are not {self._encoding} text ({exc.reason})"
                )
                out.append(raw.decode(self._encoding or "utf-8", errors="replace"))
        return newline.decode().join(out)

    # --- records to events --------------------------------------------------------------------------

    def _records(self, text: str, first_line: int) -> list[ImportEvent]:
        events: list[ImportEvent] = []
        # Notices said while decoding go out just before the row of their line, whatever the chunks.
        notices, self._notices = self._notices, []
        if self._columns is None:
            header_end = text.find("\n")
            delimiter = self.options.delimiter or _guess_delimiter(text[:header_end])
            self.summary.delimiter = delimiter
            self._delimiter = delimiter
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter, strict=False)
        line_before = first_line - 1
        batch: list[ContactRow] = []
        batch_at: list[int] = []
        try:
            for fields in reader:
                line = line_before + 1
                line_before = first_line - 1 + reader.line_num
                while notices and (notices[0].line or 0) <= line:
                    events.append(notices.pop(0))
                if self._columns is None:
                    self._columns = self._header(fields, events)
                    continue
                if not "".join(fields).strip():
                    continue  # a blank line, or one of empty fields (spreadsheets leave them)
                event = self._row(fields, line, line_before)
                if isinstance(event, ContactRow):
                    batch.append(event)
                    batch_at.append(len(events))
                events.append(event)
        except csv.Error as exc:  # only a field larger than csv's own limit gets here
            raise ContactImportError(f"the CSV cannot be read: {exc}", line=line_before + 1) from None
        events += notices
        self._lines_done = line_before
        if batch and self.do_not_call is not None:
            self._screen(batch, batch_at, events)
        return events

    def _header(self, fields: list[str], events: list[ImportEvent]) -> _Columns:
        columns = _map_header(fields, self.options)
        self.summary.header = tuple(columns.names)
        self.summary.mapping = {
            name: (target.value if target else "attribute" if index in columns.attributes else "ignored")
            for index, (name, target) in enumerate(zip(columns.names, columns.targets, strict=True))
        }
        if columns.unnamed:
            events.append(
                ImportNotice(
                    NoticeKind.UNNAMED_COLUMNS,
                    f"columns without a name are called {', '.join(columns.unnamed)}",
                    line=1,
                    columns=columns.unnamed,
                )
            )
        if columns.unknown:
            kept = "kept as attributes" if self.options.keep_unknown_columns else "ignored"
            events.append(
                ImportNotice(
                    NoticeKind.UNKNOWN_COLUMNS,
                    f"columns that are not contact fields, {kept}: {', '.join(columns.unknown)}",
                    line=1,
                    columns=columns.unknown,
                )
            )
        return columns

    def _row(self, fields: list[str], line: int, last_line: int) -> ContactRow | RowProblem:
        columns = self._columns
        assert columns is not None
        summary = self.summary
        summary.rows += 1
        row = summary.rows
        if self._bad_lines:
            for number in range(line, last_line + 1):
                if number in self._bad_lines:
                    return self._broken(row, line, f"line {number} has {self._bad_lines.pop(number)}")
        if len(fields) != columns.count:
            return self._broken(
                row, line, f"{_fields(len(fields))} where the header has {_fields(columns.count)}"
            )
        self._broken_in_a_row = 0
        if any(map(gt, map(len, fields), columns.limits)):
            for index, value in enumerate(fields):
                limit = columns.limits[index]
                if len(value) > limit:
                    return self._problem(
                        ProblemKind.FIELD_TOO_LONG,
                        f"{columns.names[index]} has {len(value)} characters (at most {limit})",
                        row=row,
                        line=line,
                        column=columns.names[index],
                        value=value,
                    )
        raw_phone = fields[columns.phone]
        phone = self._phones.get(raw_phone)
        if phone is None:
            phone = self._parse_phone(raw_phone)
        if isinstance(phone, str):
            kind = ProblemKind.INVALID_NUMBER if raw_phone.strip() else ProblemKind.MISSING_NUMBER
            return self._problem(kind, phone, row=row, line=line, column=columns.phone_name, value=raw_phone)

        name = email = language = external_id = None
        zones = phone.zones
        explicit_zone = False
        if columns.name is not None:
            name = " ".join(fields[columns.name].split()) or None
        if columns.external_id is not None:
            external_id = fields[columns.external_id].strip() or None
        if columns.email is not None and (value := fields[columns.email].strip()):
            email = value.lower()
            if not _EMAIL.match(email):
                return self._invalid(
                    row, line, columns.names[columns.email], value, "is not an email address"
                )
        if columns.language is not None and (value := fields[columns.language].strip()):
            found = _LANGUAGE.match(value)
            if not found:
                return self._invalid(
                    row, line, columns.names[columns.language], value, "is not a language code"
                )
            primary, area = found.groups()
            language = primary.lower() + (f"-{area.upper()}" if area else "")
        if columns.time_zone is not None and (value := fields[columns.time_zone].strip()):
            try:
                load_zone(value)
            except ValueError as exc:
                return self._invalid(row, line, columns.names[columns.time_zone], value, str(exc))
            zones, explicit_zone = (value,), True
        attributes = {columns.names[i]: fields[i] for i in columns.attributes if fields[i]}
        contact = ContactRow(
            row,
            line,
            phone.e164,
            phone.region,
            zones,
            explicit_zone,
            name,
            email,
            language,
            external_id,
            attributes,
        )

        key = int(phone.e164[1:])
        first = self._seen.get(key)
        if first is not None:
            return self._problem(
                ProblemKind.DUPLICATE,
                f"{phone.e164} is already on line {first}",
                row=row,
                line=line,
                column=columns.phone_name,
                value=raw_phone,
                contact=contact,
            )
        self._seen[key] = line
        why = self._uncallable(phone.region, zones)
        if why is not None:
            return self._problem(
                ProblemKind.NO_CALLABLE_TIME_ZONE, why, row=row, line=line, column=columns.phone_name,
                value=raw_phone, contact=contact,
            )  # fmt: skip
        summary.contacts += 1
        return contact

    def _screen(self, batch: list[ContactRow], positions: list[int], events: list[ImportEvent]) -> None:
        assert self.do_not_call is not None
        listed = self.do_not_call.screen([contact.phone for contact in batch])
        if not listed:
            return
        columns = self._columns
        assert columns is not None
        for contact, position in zip(batch, positions, strict=True):
            reasons = listed.get(contact.phone)
            if reasons:
                self.summary.contacts -= 1
                self.summary.problems[ProblemKind.DO_NOT_CALL.value] += 1
                events[position] = do_not_call_problem(contact, reasons, column=columns.phone_name)

    # --- fields -------------------------------------------------------------------------------------

    def _parse_phone(self, raw: str) -> NormalisedNumber | str:
        if len(self._phones) >= 65536:  # a cache of the last numbers, for lists sorted by number
            self._phones.clear()
        result = normalise_number(raw, self.options.default_region)
        self._phones[raw] = result
        return result

    def _uncallable(self, region: str | None, zones: tuple[str, ...]) -> str | None:
        if not zones:
            return "the number's time zone is unknown (give the contact a time_zone column)"
        if self._policy is None or self.options.now is None:
            return None
        key = (region, zones)
        ok = self._zones_ok.get(key)
        if ok is None:
            decision = calling_decision(
                self.options.now, callee=CalleeLocation(region, zones), policy=self._policy
            )
            ok = self._zones_ok[key] = decision.allowed or decision.next_allowed_at is not None
        if ok:
            return None
        shown = ", ".join(zones[:5]) + (f" and {len(zones) - 5} more" if len(zones) > 5 else "")
        return f"the calling hours never allow a call in all of the number's time zones ({shown})"

    def _invalid(self, row: int, line: int, column: str, value: str, why: str) -> RowProblem:
        return self._problem(
            ProblemKind.INVALID_FIELD,
            f"{column}: {value[:100]!r} {why}",
            row=row,
            line=line,
            column=column,
            value=value,
        )

    def _broken(self, row: int, line: int, why: str) -> RowProblem:
        self._broken_in_a_row += 1
        if self._broken_in_a_row >= self.options.max_consecutive_broken_rows:
            raise ContactImportError(
                f"{self._broken_in_a_row} broken rows in a row (the last: {why}): this is not a contact list"
                " with this header and delimiter",
                line=line,
            )
        return self._problem(ProblemKind.BROKEN_ROW, why, row=row, line=line)

    def _problem(
        self,
        kind: ProblemKind,
        message: str,
        *,
        line: int,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
        contact: ContactRow | None = None,
    ) -> RowProblem:
        self.summary.problems[kind.value] += 1
        if row is None:
            self.summary.rows += 1
            row = self.summary.rows
        return RowProblem(row, line, kind, message, column, None if value is None else value[:100], contact)


def do_not_call_problem(contact: ContactRow, reasons: Iterable[DialBlock], *, column: str) -> RowProblem:
    """The problem reported for a contact whose number is on a do-not-call list (`reasons`: which)."""
    which = " and ".join(
        "the global list" if reason is DialBlock.GLOBAL_DO_NOT_CALL else "this campaign's list"
        for reason in reasons
    )
    return RowProblem(
        contact.row,
        contact.line,
        ProblemKind.DO_NOT_CALL,
        f"{contact.phone} is on {which} of numbers not to call",
        column,
        contact.phone[:100],
        contact,
    )


def parse_contacts(
    chunks: Iterable[bytes],
    options: ImportOptions | None = None,
    *,
    do_not_call: DoNotCallLists | None = None,
) -> Iterator[ImportEvent]:
    """The events of a stream of chunks; `ContactImportError` ends it where the file stops making sense."""
    parser = ContactParser(options, do_not_call=do_not_call)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()


# --- phone numbers ----------------------------------------------------------------------------------

# What people put between digits; phonenumbers' parser ignores them too.
_SEPARATORS = str.maketrans("", "", " -.()/\u00a0")
_Matcher = Callable[[str], re.Match[str] | None]


@dataclass(frozen=True, slots=True)
class _Country:
    code: int
    code_text: str
    metadata_region: str  # the region whose metadata the parser reads ("001": non-geographic)
    region: str | None  # the number's country when the code has only one; None otherwise
    possible_lengths: frozenset[int]  # national number lengths is_possible_number accepts
    national_prefix: _Matcher | None  # a trunk prefix or carrier code the parser would strip
    international_prefix: _Matcher | None  # how this country dials abroad ("00", "011")


_BY_CODE: dict[int, _Country | None] = {}
_BY_REGION: dict[str, _Country | None] = {}


def normalise_number(raw: str, region: str) -> NormalisedNumber | str:
    """The number in E.164 with its country and zones, or why it is not a number.

    The same answer as `core.customers.identities.normalise_phone` (a possible number, not necessarily
    an allocated one) and `dialer.calling_window.callee_location` (a test holds them equal). Numbers
    written as plain digits, with or without a + and spaces, skip phonenumbers' general parser when
    nothing in them needs it (no national or international prefix, no leading zero): that is most of
    a contact list, and the parser was most of the cost of reading one."""
    text = raw.strip()
    if not text:
        return "the phone number is empty"
    plain = _plain_number(text.translate(_SEPARATORS), region)
    if plain is not None:
        return plain
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return f"{raw[:100]!r} is not a phone number: {exc}"
    if not phonenumbers.is_possible_number(number):
        return f"{raw[:100]!r} is not a possible phone number for its country (read in region {region})"
    found = phonenumbers.region_code_for_number(number)
    return NormalisedNumber(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        None if found in (None, "ZZ", "001") else found,
        zones_for_number(number),
    )


def _plain_number(compact: str, region: str) -> NormalisedNumber | None:
    """A possible number from "+<digits>" or national digits; None: let the parser read it."""
    if compact.startswith("+"):
        digits = compact[1:]
        if not (digits.isascii() and digits.isdigit()) or not 4 <= len(digits) <= 17:
            return None
        for size in (1, 2, 3):
            country = _country_for_code(int(digits[:size]))
            if country is not None:
                break
        else:
            return None
        national = digits[size:]
    else:
        if not (compact.isascii() and compact.isdigit()) or len(compact) < 2:
            return None
        country = _country_for_region(region)
        if country is None:
            return None
        dialled_abroad = country.international_prefix(compact) if country.international_prefix else None
        if dialled_abroad is not None:
            # "0034 612…" read in Spain: the parser strips the prefix and reads the rest as after a +,
            # unless the rest starts with 0 (no country code does); then it is the parser's call.
            rest = compact[dialled_abroad.end() :]
            return _plain_number("+" + rest, region) if rest[:1] not in ("", "0") else None
        national = compact
        # Digits that may hold the country code without a +: the parser decides.
        if national.startswith(country.code_text):
            return None
    if (
        not national
        or national[0] == "0"  # a trunk zero, or an Italian-style leading zero the parser records
        or len(national) not in country.possible_lengths
        or (country.national_prefix is not None and country.national_prefix(national))
    ):
        return None
    number_region = country.region
    if number_region is None and country.metadata_region != "001":
        # A code shared by several countries (+1, +44, +7): which one is the parser's call.
        found = phonenumbers.region_code_for_number(
            PhoneNumber(country_code=country.code, national_number=int(national))
        )
        number_region = None if found in (None, "ZZ") else found
        zones = zones_for_national(country.code, number_region, national) if number_region else ()
    else:
        zones = zones_for_national(country.code, country.metadata_region, national)
    return NormalisedNumber(f"+{country.code_text}{national}", number_region, zones)


def _regions(code: int) -> tuple[str, ...]:
    return tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()))


def _country_for_code(code: int) -> _Country | None:
    if code not in _BY_CODE:
        regions = _regions(code)
        _BY_CODE[code] = _country(code, regions[0]) if regions else None
    return _BY_CODE[code]


def _country_for_region(region: str) -> _Country | None:
    if region not in _BY_REGION:
        code = phonenumbers.country_code_for_region(region)
        _BY_REGION[region] = _country(code, region) if code else None
    return _BY_REGION[region]


def _country(code: int, region: str) -> _Country:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    regions = _regions(code)
    if metadata is None:
        return _Country(code, str(code), region, None, frozenset(), None, None)
    general = metadata.general_desc
    lengths = tuple(general.possible_length or ()) if general is not None else ()
    local = tuple(general.possible_length_local_only or ()) if general is not None else ()
    # As phonenumbers' _test_number_length: a first length of -1 means no number is possible.
    possible = frozenset(lengths + local) if lengths and lengths[0] != -1 else frozenset()
    national = metadata.national_prefix_for_parsing
    international = metadata.international_prefix
    return _Country(
        code=code,
        code_text=str(code),
        metadata_region=region,
        region=regions[0] if len(regions) == 1 and regions[0] != "001" else None,
        possible_lengths=possible,
        national_prefix=re.compile(national).match if national else None,
        international_prefix=re.compile(international).match if international else None,
    )


# --- the header -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Columns:
    names: list[str]
    targets: list[ContactField | None]
    attributes: list[int]
    unknown: tuple[str, ...]
    unnamed: tuple[str, ...]
    limits: list[int]
    phone: int
    name: int | None
    email: int | None
    language: int | None
    time_zone: int | None
    external_id: int | None

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def phone_name(self) -> str:
        return self.names[self.phone]


# The key under which the dialer keeps its own notes in a contact's attributes (a preview reservation):
# a column of that name would be overwritten, so it is refused.
RESERVED_ATTRIBUTE = "@dialer"


def _header_key(name: str) -> str:
    return _HEADER_SEPARATORS.sub("_", fold(name)).strip("_")


def _map_header(fields: list[str], options: ImportOptions) -> _Columns:
    names = []
    unnamed = []
    for index, raw in enumerate(fields):
        name = raw.strip()
        if not name:
            name = f"column_{index + 1}"
            unnamed.append(name)
        names.append(name)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ContactImportError(f"the header names a column twice: {', '.join(repeated)}", line=1)
    if RESERVED_ATTRIBUTE in names:
        raise ContactImportError(
            f"the column name {RESERVED_ATTRIBUTE!r} is reserved for the dialer's notes: rename the column",
            line=1,
        )
    explicit = dict(options.columns or {})
    missing = sorted(set(explicit) - set(names))
    if missing:
        raise ContactImportError(
            f"mapped columns not in the header: {', '.join(missing)} (the header has: {', '.join(names)})",
            line=1,
        )
    targets: list[ContactField | None] = []
    attributes: list[int] = []
    unknown: list[str] = []
    where: dict[ContactField, int] = {}
    for index, name in enumerate(names):
        if name in explicit:
            target = explicit[name]
            if target is not None:
                target = ContactField(target)
        else:
            target = HEADER_ALIASES.get(_header_key(name))
            if target is None:
                unknown.append(name)
                if options.keep_unknown_columns:
                    attributes.append(index)
        if target is not None and target in where:
            raise ContactImportError(
                f"columns {names[where[target]]!r} and {name!r} are both the {target.value}:"
                " map one of them to another field or to nothing",
                line=1,
            )
        if target is not None:
            where[target] = index
        targets.append(target)
    if ContactField.PHONE not in where:
        raise ContactImportError(
            f"no phone column in the header ({', '.join(names)}): name it 'phone' or map it", line=1
        )
    limits = [_FIELD_LIMITS.get(target, options.max_field_chars) if target else options.max_field_chars
              for target in targets]  # fmt: skip
    return _Columns(
        names=names,
        targets=targets,
        attributes=attributes,
        unknown=tuple(unknown),
        unnamed=tuple(unnamed),
        limits=limits,
        phone=where[ContactField.PHONE],
        name=where.get(ContactField.NAME),
        email=where.get(ContactField.EMAIL),
        language=where.get(ContactField.LANGUAGE),
        time_zone=where.get(ContactField.TIME_ZONE),
        external_id=where.get(ContactField.EXTERNAL_ID),
    )


def _line_ending(data: bytes) -> bytes | None:
    """How lines end, from the first one; None until a line ending is seen whole."""
    newline, carriage = data.find(b"\n"), data.find(b"\r")
    if carriage >= 0 and (newline < 0 or carriage < newline):
        if carriage + 1 == len(data):
            return None  # a CR at the very end: CRLF or a bare CR, the next byte tells
        return b"\n" if data[carriage + 1 : carriage + 2] == b"\n" else b"\r"
    return b"\n" if newline >= 0 else None


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _guess_delimiter(header_line: str) -> str:
    counts = [(header_line.count(d), -index, d) for index, d in enumerate(_DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] else ","


def _split_open_record(text: str) -> tuple[str, str]:
    """`text` (whole lines) cut where the last complete record ends; the rest is a record whose quoted
    field goes on in lines not read yet. Each `"` opens or closes a quoted field (an escaped quote is
    two), so a newline ends a record when the quotes before it are even."""
    if text.count('"') % 2 == 0:
        return text, ""
    quotes = 0
    cut = 0
    position = 0
    for line in text.split("\n")[:-1]:
        position += len(line) + 1
        quotes += line.count('"')
        if quotes % 2 == 0:
            cut = position
    return text[:cut], text[cut:]
