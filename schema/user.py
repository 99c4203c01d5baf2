"""Users, their look-alikes, and the Relay-style user connection.

A ``User`` holds its id, and its documents when whoever made it had read them: a listing (``users``,
``droppedOff``, ``converted``) reads the documents of its page in one batch when the query asks for
profile fields or ``converted``, so those answer without an await per field per user. Elsewhere each
field asks the per-request loaders, so a list of users costs one batch only when some field actually
needs the document.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import date as Day  # `User.date` would shadow `date` in the class's annotations
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gateway.analytics.lookalike import DEFAULT_K
from gateway.analytics.pages import DEFAULT_SESSIONS, SESSIONS_PAGE, check_page, page_of
from gateway.analytics.similar_on_page import SimilarOnPageQuery, check_vector_page, vector_pages
from gateway.analytics.similar_users import DEFAULT_LIMIT, SimilarQuery
from gateway.errors import BadInput, NotFound, shown
from gateway.models import Document, UserPage, from_fields
from gateway.security.field_rules import VECTOR_SEARCH, Catalogue, checked, known, paged, price
from gateway.validation import USER_ID_MAX, check_min_score, check_similar_limit
from schema.enums import Device, Sex, device_of, sex_of
from schema.journey import Journey
from schema.paging import Offset, paged_list
from schema.session import Session


async def journey_of(info: strawberry.Info, user_id: int) -> Journey:
    visits = (await info.context.loaders.journey.load(user_id))["visits"]
    return Journey(user_id=user_id, stored_visits=visits)


async def similar_users(info: strawberry.Info, query: SimilarQuery) -> list[SimilarUser] | None:
    hits = await info.context.loaders.similar_users.load(query)
    if hits is None:  # no behaviour vector: "not known yet", which [] ("nobody alike") would hide
        return None
    return [SimilarUser(user_id=h["user_id"], score=h["score"]) for h in hits]


# What a null similarUsers means, for both fields' descriptions.
SIMILAR_NULL = (
    "null when the user has no behaviour embedding yet (created since the last `funnelgate embed`) and, "
    "with an UNAVAILABLE error, when Milvus is down; [] when nobody matches"
)


MIN_SCORE = (
    "Only users at least this similar (cosine, -1..1), and then every one of them up to `limit`; the "
    "search is exact over all vectors when it is given."
)

# The pages similarOnPage can search: the page-vector partitions served now, read before execution.
VECTOR_PAGES = Catalogue(read=lambda services: vector_pages(services.vectors), check=check_vector_page)


@strawberry.type
class User:
    id: int
    # The user's document when whoever made this User had already read it (a listing reads its page's in
    # one batch, :func:`with_documents`): the profile fields then answer at once. Otherwise each asks the
    # loader, an awaitable per field per user, which for 1,000 users was most of the request's time.
    doc: strawberry.Private[Document | None] = None
    # Its session documents, likewise read for a listing's page when `converted` is asked.
    session_docs: strawberry.Private[list[Document] | None] = None

    async def _doc(self, info: strawberry.Info) -> Document:
        doc = self.doc if self.doc is not None else await info.context.loaders.users.load(self.id)
        if doc is None:
            raise NotFound(f"user {self.id} does not exist")
        return doc

    def _profile(self, info: strawberry.Info, read: Callable[[Document], Any]) -> Any:
        """``read`` of the document: a value when it is here, else an awaitable (GraphQL awaits it)."""
        if self.doc is not None:
            return read(self.doc)
        return self._read_later(info, read)

    async def _read_later(self, info: strawberry.Info, read: Callable[[Document], Any]) -> Any:
        return read(await self._doc(info))

    @strawberry.field
    def device(self, info: strawberry.Info) -> Device | None:
        return self._profile(info, lambda d: device_of(d.get("device")))

    @strawberry.field
    def sex(self, info: strawberry.Info) -> Sex | None:
        return self._profile(info, lambda d: sex_of(d.get("sex")))

    @strawberry.field(
        description=(
            "Day the user was first seen: their first visit in imported data; for a user created by live "
            "events, the day of their earliest event in the first batch that named them (never moved by later, "
            "earlier-dated events)."
        )
    )
    def date(self, info: strawberry.Info) -> Day | None:
        return self._profile(info, lambda d: d.get("date"))

    @strawberry.field(description="Every other column the dataset had for this user.")
    def attributes(self, info: strawberry.Info) -> JSON:
        return self._profile(info, lambda d: JSON(d.get("attributes") or {}))

    @strawberry.field(
        description=(
            f"Sessions by start time. {SESSIONS_PAGE} The default page is {DEFAULT_SESSIONS}, a tenth of the "
            "visit lists': every session of a normal user (generated and Kaggle users have one or two), "
            "and each session carries visit lists of its own, so a listing that nests sessions stays "
            "within the cost budget. `sessionCount` says how many there are in all."
        ),
        metadata=paged_list(DEFAULT_SESSIONS),
    )
    async def sessions(
        self,
        info: strawberry.Info,
        first: int | None = None,
        last: int | None = None,
        offset: Offset = None,
    ) -> list[Session]:
        max_page = info.context.services.settings.max_page_size
        check_page(first, last, offset, max_page)  # a bad page is refused before the sessions are read
        page = page_of(await self._sessions(info), first, last, offset, max_page, DEFAULT_SESSIONS)
        return [from_fields(Session, d, id="session_id", stored_pages="pages_visited") for d in page]

    @strawberry.field(
        description="How many sessions the user has: all of them, whatever page `sessions` answers."
    )
    async def session_count(self, info: strawberry.Info) -> int:
        return len(await self._sessions(info))

    async def _sessions(self, info: strawberry.Info) -> list[Document]:
        if self.session_docs is not None:
            return self.session_docs
        return await info.context.loaders.sessions_by_user.load(self.id) or []

    @strawberry.field
    async def journey(self, info: strawberry.Info) -> Journey:
        return await journey_of(info, self.id)

    @strawberry.field(description="At least one of the user's sessions converted.")
    def converted(self, info: strawberry.Info) -> bool:
        if self.session_docs is not None:
            return any(d["converted"] for d in self.session_docs)
        return self._converted_later(info)  # type: ignore[return-value]  # GraphQL awaits it

    async def _converted_later(self, info: strawberry.Info) -> bool:
        docs = await info.context.loaders.sessions_by_user.load(self.id) or []
        return any(d["converted"] for d in docs)

    @strawberry.field(
        description=(
            "Users whose behaviour before their outcome (conversion or leaving) was most like this "
            f"user's, best first; {SIMILAR_NULL}."
        ),
        metadata=price(VECTOR_SEARCH) | paged(check_similar_limit) | checked(minScore=check_min_score),
    )
    async def similar_users(
        self,
        info: strawberry.Info,
        limit: int = DEFAULT_LIMIT,
        min_score: Annotated[float | None, strawberry.argument(description=MIN_SCORE)] = None,
    ) -> list[SimilarUser] | None:
        return await similar_users(info, SimilarQuery(user_id=self.id, limit=limit, min_score=min_score))

    @strawberry.field(
        description=(
            "Users who behaved most like this one on one page type (time spent, interactions, elements, "
            "scrolling, what they typed or picked there), best first. [] when the user has no vector for "
            "the page: never visited it before the outcome, or created since the last `funnelgate "
            "embed` (then `similarUsers` is null). Every page but the outcome step has page vectors; "
            "another pageType is BAD_USER_INPUT."
        ),
        metadata=price(VECTOR_SEARCH)
        | paged(check_similar_limit)
        | checked(minScore=check_min_score)
        | known(pageType=VECTOR_PAGES),
    )
    async def similar_on_page(
        self,
        info: strawberry.Info,
        page_type: str,
        limit: int = DEFAULT_LIMIT,
        min_score: Annotated[float | None, strawberry.argument(description=MIN_SCORE)] = None,
    ) -> list[SimilarUser] | None:
        query = SimilarOnPageQuery(self.id, page_type, limit, min_score)
        hits = await info.context.loaders.similar_on_page.load(query)
        return [SimilarUser(user_id=h["user_id"], score=h["score"]) for h in hits or []]

    @strawberry.field(
        description=(
            f"For a user who has not converted: the similarity-weighted share of later converters among "
            f"the {DEFAULT_K} users whose behaviour before their outcome was most like this user's, "
            "smoothed toward the base rate (one pseudo-neighbour), so never exactly 0 or 1. 1.0 for a "
            "user who has converted. Null without a behaviour vector (and with an error if Milvus is down)."
        ),
        metadata=price(VECTOR_SEARCH),
    )
    async def conversion_likelihood(self, info: strawberry.Info) -> float | None:
        sessions = await info.context.loaders.sessions_by_user.load(self.id) or []
        if any(s["converted"] for s in sessions):
            return 1.0
        score: float | None = await info.context.loaders.conversion_likelihood.load(self.id)
        return score


@strawberry.type(description="A look-alike user and its cosine similarity.")
class SimilarUser:
    user_id: int
    score: float = strawberry.field(description="Cosine similarity of the behaviour embeddings.")

    @strawberry.field
    def user(self) -> User:
        return User(id=self.user_id)


# The fields answered from the user's document.
PROFILE = frozenset({"device", "sex", "date", "attributes"})


async def with_documents(info: strawberry.Info, page: UserPage) -> UserConnection:
    """The connection of ``page``, with its users' documents read in one batch when the query asks a
    profile field of its nodes (a fragment there is taken as asking one)."""
    selections, ids, loaders = info.selected_fields[0].selections, list(page.user_ids), info.context.loaders
    profile = asks(selections, ("edges", "node"), PROFILE)
    converted = asks(selections, ("edges", "node"), frozenset({"converted"}))
    docs, sessions = await asyncio.gather(
        loaders.users.load_many(ids) if profile else _nothing(),
        loaders.sessions_by_user.load_many(ids) if converted else _nothing(),
    )
    return UserConnection.from_page(page, docs, sessions)


async def _nothing() -> None:
    return None


def asks(selections: Sequence[Selection], path: tuple[str, ...], names: frozenset[str]) -> bool:
    """Whether ``selections``, along the fields ``path``, select any of ``names``; fragments are looked
    into (@skip/@include are not: a profile read for nothing costs one batch)."""
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            if asks(selection.selections, path, names):
                return True
        elif isinstance(selection, SelectedField):
            if not path and selection.name in names:
                return True
            if path and selection.name == path[0] and asks(selection.selections, path[1:], names):
                return True
    return False


# -- the connection -----------------------------------------------------------------------------
def encode_cursor(user_id: int) -> str:
    return base64.b64encode(str(user_id).encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        after = int(base64.b64decode(cursor.encode(), validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _not_a_cursor(cursor) from None
    # A cursor holds a user id, written by encode_cursor: any other number was not one of ours, and
    # neither is another spelling of one. int() reads "+1", " 1", "01", "1_0" (10) and other scripts'
    # digits (U+0661): a made-up cursor would silently page from a user the client never saw.
    if not 0 <= after <= USER_ID_MAX or encode_cursor(after) != cursor:
        raise _not_a_cursor(cursor)
    return after


def _not_a_cursor(cursor: str) -> BadInput:
    # Named as the argument is (`after`), and where a good one comes from.
    return BadInput(
        f"after must be a cursor of this connection (an edge's cursor or pageInfo.endCursor), got {shown(cursor)}"
    )


@strawberry.type(description="Relay's page info. Pages go forward only (`first`/`after`).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More users follow `endCursor`.")
    has_previous_page: bool = strawberry.field(
        description=(
            "Always false: pages go forward only (no `last`/`before`), and the Relay connection "
            "spec allows false for forward pagination."
        )
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor; null on an empty page.")
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor (pass it as `after` for the next page); null on an empty page."
    )


@strawberry.type
class UserEdge:
    cursor: str = strawberry.field(description="Opaque; pass as `after` to continue after this user.")
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Every match, not just this page.")

    @classmethod
    def from_page(
        cls,
        page: UserPage,
        docs: Sequence[Document | None] | None = None,
        sessions: Sequence[list[Document] | None] | None = None,
    ) -> UserConnection:
        """The connection of ``page``; ``docs`` and ``sessions`` (in the page's order), when read, are its
        users' documents and session documents."""
        nothing = [None] * len(page.user_ids)
        edges = [
            UserEdge(cursor=encode_cursor(i), node=User(id=i, doc=d, session_docs=s))
            for i, d, s in zip(page.user_ids, docs or nothing, sessions or nothing, strict=True)
        ]
        start, end = (edges[0].cursor, edges[-1].cursor) if edges else (None, None)
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, has_previous_page=False, start_cursor=start, end_cursor=end
            ),
            total_count=page.total,
        )
