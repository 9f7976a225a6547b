"""Importing a contact list from a stream (an HTTP upload): parse as it arrives, load in batches.

Memory stays flat whatever the file's size: one chunk, two batches of rows (one parsed, one being
written), and the parser's set of numbers seen. Each batch is committed on its own, in a worker thread,
so the event loop keeps parsing (and serving calls and requests) while the database works; a file that
breaks half-way keeps what was loaded and the list says where and why it stopped (status `failed`, with
the error).

Do-not-call numbers are reported at import (from the lists as they are then, screened with each batch's
write rather than while parsing) and checked again at every dial, so a number listed after the import
is still never called.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work, utcnow
from core.errors import InvalidInput
from dialer import campaigns, contact_lists
from dialer.contact_import import (
    ContactImportError,
    ContactParser,
    ContactRow,
    ImportNotice,
    ImportOptions,
    ProblemKind,
    RowProblem,
    do_not_call_problem,
)
from dialer.models import ContactList

T = TypeVar("T")

BATCH_ROWS = 5_000


async def import_contact_list(
    chunks: AsyncIterator[bytes],
    *,
    sessions: sessionmaker[Session],
    campaign_id: int,
    filename: str | None,
    region: str | None = None,
) -> ContactList:
    def in_unit_of_work(work: Callable[[Session], T]) -> T:
        with unit_of_work(sessions) as session:
            return work(session)

    def start(work: Callable[[Session], T]) -> asyncio.Future[T]:
        # Handed to a worker thread at once (as asyncio.to_thread would, context and all): a task would
        # only start at the parser's next pause, which on an upload already buffered is the next batch,
        # leaving the database idle while that batch is parsed.
        run = functools.partial(contextvars.copy_context().run, in_unit_of_work, work)
        return asyncio.get_running_loop().run_in_executor(None, run)

    async def db(work: Callable[[Session], T]) -> T:
        return await start(work)

    def begin(session: Session) -> tuple[int, str, bool]:
        campaign = campaigns.get_campaign(db=session, campaign_id=campaign_id)
        if campaign.status == campaigns.CampaignStatus.STOPPED:
            raise InvalidInput(f"campaign {campaign_id} is stopped: it takes no new contacts")
        country = campaigns.settings_of(campaign).country
        contact_list = contact_lists.start_list(db=session, campaign_id=campaign_id, filename=filename)
        return contact_list.id, country, session.get_bind().dialect.name == "postgresql"

    list_id, country, postgresql = await db(begin)
    # The do-not-call lists are screened with each batch's write (contact_lists.load_contacts), in the
    # same statement on PostgreSQL: a query per upload chunk from the parser was a quarter of the time.
    parser = ContactParser(ImportOptions(default_region=region or country))
    progress = _Progress(campaign_id, list_id)
    rows: list[ContactRow] = []
    problems: list[RowProblem] = []

    writing: list[asyncio.Future[None]] = []  # at most one batch is written while the next is parsed

    async def flush(*, wait: bool = False) -> None:
        # One upload chunk can hold many batches' worth of rows: write them BATCH_ROWS at a time,
        # and problems with them up to the same row, so that the report keeps the file's order.
        while rows or problems:
            cut = _next_batch(rows, problems)
            batch_rows, rows[:] = rows[: cut[0]], rows[cut[0] :]
            batch_problems, problems[:] = problems[: cut[1]], problems[cut[1] :]
            # Built here, while the batch before is still being written.
            copy_data = contact_lists.copy_data_of(batch_rows) if postgresql and batch_rows else None
            if writing:
                await writing.pop()  # batches are written in order, and an error stops the import
            phone_column = parser.phone_column or ""  # read: rows come after the header
            work = functools.partial(
                progress.write,
                rows=batch_rows,
                problems=batch_problems,
                phone_column=phone_column,
                copy_data=copy_data,
            )
            writing.append(start(work))
        if wait and writing:
            await writing.pop()

    error: str | None = None
    try:
        async for chunk in chunks:
            _take(parser.feed(chunk), rows, problems, progress.notices)
            if len(rows) >= BATCH_ROWS or len(problems) >= BATCH_ROWS:
                await flush()
        _take(parser.close(), rows, problems, progress.notices)
        await flush(wait=True)
    except ContactImportError as exc:
        error = str(exc)
        await flush(wait=True)  # what was read before the break is good: keep it
    finally:
        for task in writing:  # the upload failed some other way: let the batch in flight end first
            await asyncio.gather(task, return_exceptions=True)

    def finish(session: Session) -> ContactList:
        return contact_lists.finish_list(
            db=session,
            list_id=list_id,
            summary=parser.summary,
            loaded=progress.loaded,
            rejected=progress.rejected,
            first_problems=progress.first_problems,
            notices=progress.notices,
            error=error,
            now=utcnow(),
        )

    return await db(finish)


@dataclass
class _Progress:
    campaign_id: int
    list_id: int
    loaded: int = 0
    kept: int = 0  # problems kept row by row
    rejected: Counter[str] = field(default_factory=Counter)
    first_problems: list[dict[str, Any]] = field(default_factory=list)
    notices: list[ImportNotice] = field(default_factory=list)

    def write(
        self,
        session: Session,
        rows: list[ContactRow],
        problems: list[RowProblem],
        phone_column: str,
        copy_data: bytes | None,
    ) -> None:
        batch = contact_lists.load_contacts(
            db=session, campaign_id=self.campaign_id, list_id=self.list_id, rows=rows, copy_data=copy_data
        )
        problems = problems + [
            do_not_call_problem(contact, reasons, column=phone_column) for contact, reasons in batch.listed
        ]
        problems += [
            RowProblem(
                d.row, d.line, ProblemKind.DUPLICATE, f"{d.phone} is already in this campaign", contact=d
            )
            for d in batch.duplicates
        ]
        problems.sort(key=lambda problem: problem.row)  # the report reads in the file's order
        self.kept = contact_lists.record_problems(
            db=session, list_id=self.list_id, problems=problems, kept_so_far=self.kept
        )
        for problem in problems:
            self.rejected[problem.kind.value] += 1
            if len(self.first_problems) < contact_lists.FIRST_PROBLEMS:
                self.first_problems.append(contact_lists.problem_summary(problem))
        self.loaded += batch.loaded


def _next_batch(rows: list[ContactRow], problems: list[RowProblem]) -> tuple[int, int]:
    """How many of `rows` and of `problems` (each in the file's order) the next batch takes: at most
    BATCH_ROWS of each, and nothing from a row after one that has to wait for the batch after."""
    waiting = [items[BATCH_ROWS].row for items in (rows, problems) if len(items) > BATCH_ROWS]
    if not waiting:
        return len(rows), len(problems)
    first_waiting = min(waiting)
    return (
        bisect.bisect_left(rows, first_waiting, key=_row_number),
        bisect.bisect_left(problems, first_waiting, key=_row_number),
    )


def _row_number(item: ContactRow | RowProblem) -> int:
    return item.row


def _take(
    events: list[Any], rows: list[ContactRow], problems: list[RowProblem], notices: list[ImportNotice]
) -> None:
    for event in events:
        if isinstance(event, ContactRow):
            rows.append(event)
        elif isinstance(event, RowProblem):
            problems.append(event)
        else:
            notices.append(event)
