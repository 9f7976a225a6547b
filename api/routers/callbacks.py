"""Callbacks: "call me now" or "call me at 17:00", from a web page, a chat or an agent's desk.

Who may book one: keys with `callbacks:request`, which every role has. A web page or chat widget asks
through its own server, which holds an `integration` key (never put a key in the page's JavaScript);
a booking by an `agent` key is recorded as the agent's, anything else as the web's. Reading and
cancelling callbacks needs `callbacks:manage` (agents, integrations, managers).

A refused booking answers 422 with `detail` (why) and `violations` (`field`, `rule`, `message`): a
malformed number (`malformed_number`), a do-not-call number (`global_do_not_call`, or the customer's
`consent_withdrawn`), a time in the past (`in_the_past`) or outside calling hours (`outside_hours`),
an unknown queue (`unknown_queue`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from api.deps import ReadDB, SettingsDep, WriteDB, require
from core.auth.roles import Permission, Role
from core.auth.service import Principal
from core.db import utcnow
from routing import callbacks as service
from routing.callback_models import CallbackSource, CallbackStatus
from routing.callback_rules import CallbackRules
from routing.callback_schemas import (
    CallbackAccepted,
    CallbackCancel,
    CallbackCreate,
    CallbackList,
    CallbackRead,
)

router = APIRouter(prefix="/callbacks", tags=["callbacks"])

RequestCallbacks = Annotated[Principal, Depends(require(Permission.CALLBACKS_REQUEST))]
ManageCallbacks = Annotated[Principal, Depends(require(Permission.CALLBACKS_MANAGE))]


def _rules(request: Request, settings: SettingsDep) -> CallbackRules:
    desk = getattr(request.app.state, "callbacks", None)
    return desk.rules if desk is not None else CallbackRules.from_settings(settings)


Rules = Annotated[CallbackRules, Depends(_rules)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CallbackAccepted,
    responses={
        200: {"description": "a callback to this number in this queue is already pending: that one"},
        422: {"description": "refused: `violations` names the field and the rule"},
    },
)
def request_callback(
    data: CallbackCreate, response: Response, db: WriteDB, rules: Rules, who: RequestCallbacks
) -> Any:
    """Books a callback: `{"phone": "+34600111222"}` calls as soon as an agent is free (within the
    callee's calling hours: outside them, at the next allowed moment, which `due_at` and `note` say);
    with `"at"`, at that time. `context` (the page's URL, a chat transcript id) is kept on the case."""
    booked = service.request_callback(
        db=db,
        ask=service.CallbackAsk(
            phone=data.phone,
            source=CallbackSource.AGENT if who.role is Role.AGENT else CallbackSource.WEB,
            at=data.at,
            queue=data.queue,
            name=data.name,
            language=data.language,
            context=data.context,
            interaction_id=data.interaction_id,
        ),
        rules=rules,
        actor=who.name,
        now=utcnow(),
    )
    if not booked.created:
        response.status_code = status.HTTP_200_OK
    callback = booked.callback
    return CallbackAccepted(
        id=callback.id, status=callback.status, queue=callback.queue, due_at=callback.due_at, note=booked.note
    )


@router.get("", response_model=CallbackList)
def list_callbacks(
    db: ReadDB,
    _: ManageCallbacks,
    status_: Annotated[list[CallbackStatus] | None, Query(alias="status")] = None,
    customer_id: int | None = None,
    queue: str | None = None,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Oldest first; `status` may be given more than once."""
    items = service.list_callbacks(
        db=db,
        statuses=[s.value for s in status_ or ()],
        customer_id=customer_id,
        queue=queue,
        after_id=after_id,
        limit=limit,
    )
    return {"items": items, "next_after_id": items[-1].id if len(items) == limit else None}


@router.get("/{callback_id}", response_model=CallbackRead)
def get_callback(callback_id: int, db: ReadDB, _: ManageCallbacks) -> Any:
    return service.get_callback(db=db, callback_id=callback_id)


@router.post("/{callback_id}/cancel", response_model=CallbackRead)
def cancel_callback(
    callback_id: int, db: WriteDB, who: ManageCallbacks, data: CallbackCancel | None = None
) -> Any:
    """A pending callback (requested, waiting, or ringing the customer: that call is hung up)."""
    reason = data.reason if data is not None else None
    return service.cancel_callback(
        db=db, callback_id=callback_id, actor=who.name, reason=reason, now=utcnow()
    )
