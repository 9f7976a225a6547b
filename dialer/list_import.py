"""Importing a contact list from a stream (an HTTP upload): parse as it arrives, load in batches.

Memory stays flat whatever the file's size: one chunk, one batch of rows, and the parser's set of
numbers seen. Each batch is committed on its own, in a worker thread, so the event loop keeps serving
calls and requests; a file that breaks half-way keeps what was loaded and the list says where and why it
stopped (status `failed`, with the error).

Do-not-call numbers are reported at import (from the lists as they are then) and checked again at every
dial, so a number listed after the import is still never called.
"""

from __future__ import annotations

import asyncio
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
)
from dialer.do_not_call_store import lists_for
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
    async def db(work: Callable[[Session], T]) -> T:
        def run() -> T:
            with unit_of_work(sessions) as session:
                return work(session)

        return await asyncio.to_thread(run)

    def begin(session: Session) -> tuple[int, str]:
        campaign = campaigns.get_campaign(db=session, campaign_id=campaign_id)
        if campaign.status == campaigns.CampaignStatus.STOPPED:
            raise InvalidInput(f"campaign {campaign_id} is stopped: it takes no new contacts")
        country = campaigns.settings_of(campaign).country
        return contact_lists.start_list(db=session, campaign_id=campaign_id, filename=filename).id, country

    list_id, country = await db(begin)
    # The parser reads the do-not-call lists through its own session, batch by batch.
    screening = sessions()
    parser = ContactParser(
        ImportOptions(default_region=region or country), do_not_call=lists_for(screening, campaign_id)
    )
    progress = _Progress(campaign_id, list_id)
    rows: list[ContactRow] = []
    problems: list[RowProblem] = []

    writing: list[asyncio.Task[None]] = []  # at most one batch is written while the next is parsed

    async def flush(*, wait: bool = False) -> None:
        # One upload chunk can hold many batches' worth of rows: write them BATCH_ROWS at a time.
        while rows or problems:
            batch_rows, batch_problems = rows[:BATCH_ROWS], problems[:BATCH_ROWS]
            del rows[:BATCH_ROWS], problems[:BATCH_ROWS]
            if writing:
                await writing.pop()  # batches are written in order, and an error stops the import
            work = functools.partial(progress.write, rows=batch_rows, problems=batch_problems)
            writing.append(asyncio.ensure_future(db(work)))
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
        screening.close()

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

    def write(self, session: Session, rows: list[ContactRow], problems: list[RowProblem]) -> None:
        duplicates = contact_lists.load_contacts(
            db=session, campaign_id=self.campaign_id, list_id=self.list_id, rows=rows
        )
        problems = problems + [
            RowProblem(
                d.row, d.line, ProblemKind.DUPLICATE, f"{d.phone} is already in this campaign", contact=d
            )
            for d in duplicates
        ]
        self.kept = contact_lists.record_problems(
            db=session, list_id=self.list_id, problems=problems, kept_so_far=self.kept
        )
        for problem in problems:
            self.rejected[problem.kind.value] += 1
            if len(self.first_problems) < contact_lists.FIRST_PROBLEMS:
                self.first_problems.append(contact_lists.problem_summary(problem))
        self.loaded += len(rows) - len(duplicates)


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
