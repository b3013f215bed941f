"""``/v1/recipients/{recipient_id}``: a recipient, read, created, changed or erased.

Bodies are import lines (``planner import``'s format, without ``type``), parsed by the importer's
own code, so a body the API accepts is a line ``planner import`` accepts and the other way round.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from planner.api.dependencies import AppDep, Reader, Writer, audit
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EXTERNAL_ID, Changes, Document, RecipientId
from planner.commands import recipients
from planner.core.recipient_search import RecipientSearch
from planner.readmodels.recipients import MAX_PAGE_SIZE, list_recipients

router = APIRouter(
    prefix="/v1",
    tags=["recipients"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)

ChannelFilter = Literal["email", "sms", "any"]


@router.get("/recipients")
def find_recipients(
    app: AppDep,
    who: Reader,
    q: Annotated[
        str | None,
        Query(max_length=320, description="An email address, a phone number or the start of an id."),
    ] = None,
    id_prefix: Annotated[
        str | None, Query(max_length=200, description="The start of the id (exact case).")
    ] = None,
    email: Annotated[str | None, Query(max_length=320, description="An email address (any case).")] = None,
    phone: Annotated[
        str | None, Query(max_length=40, description="A phone number, with or without separators.")
    ] = None,
    zone: Annotated[str | None, Query(max_length=64, description="An IANA time zone name.")] = None,
    opted_out: Annotated[
        ChannelFilter | None, Query(description="Opted out of the channel or a kind on it.")
    ] = None,
    invalid: Annotated[
        ChannelFilter | None, Query(description="With the channel's address marked invalid.")
    ] = None,
    after: Annotated[
        str | None, Query(pattern=EXTERNAL_ID, description="The last id of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """Recipients in id order, found by an id prefix, an email address or a phone number (exact,
    normalised: any case, any separators), filtered by zone, opt-out and invalid address; a page of
    `limit`, the next one from `after=<next_after>`. Scope: read."""
    search = RecipientSearch.parse(
        q=q, id_prefix=id_prefix, email=email, phone=phone, zone=zone, opted_out=opted_out, invalid=invalid
    )
    with app.sessions() as session:
        return list_recipients(session, search, after, limit).as_dict()


@router.get("/recipients/{recipient_id}")
def get_recipient(app: AppDep, recipient_id: RecipientId, who: Reader) -> dict[str, Any]:
    """The recipient, its subscriptions and preferences, and its next 5 sends (local time, UTC,
    and the DST or quiet-hours rule applied, as `planner simulate` shows them). Scope: read."""
    return recipients.view(app, recipient_id, app.clock())


@router.put("/recipients/{recipient_id}", responses={201: {"description": "Created."}})
def put_recipient(
    app: AppDep, recipient_id: RecipientId, body: Document, response: Response, who: Writer
) -> dict[str, Any]:
    """Create or replace the recipient (idempotent). Scope: write."""
    created, result = recipients.put_recipient(app, recipient_id, body, app.clock())
    response.status_code = 201 if created else 200
    audit(app, who, "recipient_created" if created else "recipient_replaced", f"recipient:{recipient_id}")
    return result


@router.patch("/recipients/{recipient_id}")
def patch_recipient(app: AppDep, recipient_id: RecipientId, body: Changes, who: Writer) -> dict[str, Any]:
    """Change some fields of the recipient. Scope: write."""
    result = recipients.patch_recipient(app, recipient_id, body, app.clock())
    audit(app, who, "recipient_patched", f"recipient:{recipient_id}", {"fields": sorted(body)})
    return result


@router.delete("/recipients/{recipient_id}")
def delete_recipient(app: AppDep, recipient_id: RecipientId, who: Writer) -> dict[str, Any]:
    """Erase the recipient: personal data removed, history anonymised, pending deliveries
    cancelled with reason `recipient_deleted`. Scope: write."""
    result = recipients.erase(app, recipient_id, app.clock())
    cancelled = {"cancelled": result["deliveries_cancelled"]}
    audit(app, who, "recipient_erased", f"recipient:{recipient_id}", cancelled)
    return result
