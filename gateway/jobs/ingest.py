"""`funnelgate ingest`: a directory of funnel CSVs into the DocumentStore: validate, synthesise, write,
summarise. The CSV reading, cleaning and synthesis themselves live in :mod:`gateway.ingest`.

Order matters for the guarantees:
  1. Read and validate everything first. Anything fatal raises IngestError before the first write, so
     the previous data stays intact.
  2. Build the next generation aside (``stores/datasets.py``): per batch of users, their documents are
     appended to it (the next batch is synthesised in a worker thread meanwhile); then what a re-ingest
     keeps is carried over from the served generation (users the CSVs do not name, with their history;
     live events of the users they do name), the indexes are built, the default funnel and
     ``funnel_analytics`` are computed from exactly this data.
  3. Switch in one step. A failure or a kill before it leaves the previous data served, whole; the
     build's leftovers go at the next start. Cached answers are scoped by the generation, so none
     computed from the old data is read after the switch.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

from gateway.config import Settings
from gateway.embedded.datadir_lock import DataDirLock
from gateway.errors import BadInput, ConfigError, IngestError
from gateway.ingest.csv_files import USER_TABLE, CsvDataset, UserRow, page_name, page_of_file, read_dataset
from gateway.ingest.report import IngestReport
from gateway.ingest.synthesis import DEFAULT_VISIT_DATE, SynthesisPlan, synthesise, visit_order
from gateway.jobs.refresh import refresh_funnel_analytics
from gateway.models import Document
from gateway.services import invalidate_shared_cache, open_store
from gateway.stores.collections import (
    PAGE_VISITS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
    carry_user_device,
)
from gateway.stores.contracts import DocumentStore
from gateway.stores.datasets import DatasetBuild, Generational
from gateway.validation import MIN_STEPS_ASKED, check_known_steps, check_steps

BATCH_USERS = 10_000
# Bumped whenever ingest writes different documents from the same input, so `make demo` ingests again
# (funnelgate fingerprint prints it). 2: user_interactions.free_text. 3: purchase intent and the browsing
# session of issue 15 (`make demo` then embeds again too, into the aliased, typed collections).
DOCUMENT_FORMAT = 3
Progress = Callable[[str, int, int], None]
Batch = list[tuple[str, list[Document]]]


async def run_ingest(
    settings: Settings,
    csv_dir: Path,
    steps: Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> IngestReport:
    """The command: hold the data dir (embedded store), ingest into the configured store as its next
    generation, then drop the previous generation's cached answers from a shared Redis. Only the
    document store is opened: ingest needs nothing else. On MongoDB no lock is needed: gateways keep
    serving the previous generation until the switch, and their cache keys are scoped by it."""
    if steps is not None:
        check_steps_option(steps)  # before anything is opened or read
    async with AsyncExitStack() as stack:
        if settings.embedded_document_store:
            stack.enter_context(DataDirLock(settings.data_dir))
        # The served file's own funnel index would only be built to be thrown away at the switch.
        store = await open_store(settings, index=False)
        stack.push_async_callback(store.close)
        await store.ensure_indexes()
        previous = getattr(store, "dataset", "")
        report = await ingest_directory(
            store,
            csv_dir,
            steps=steps,
            seed=seed,
            progress=progress,
            switch_grace_s=settings.switch_grace_s,
        )
    await invalidate_shared_cache(settings, previous)
    return report


async def ingest_directory(
    store: DocumentStore,
    csv_dir: Path,
    steps: Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    switch_grace_s: float = 0.0,
) -> IngestReport:
    """Load ``csv_dir`` into ``store`` as its next generation; see the module docstring. Raises
    IngestError (nothing written) for unusable input; store errors (StoreUnavailable) propagate.
    ``switch_grace_s``: how long other processes get to notice the switch before the old generation's
    late live events are folded in and it is dropped (``DatasetBuild.retire``)."""
    started = time.perf_counter()
    dataset = await asyncio.to_thread(read_dataset, Path(csv_dir))
    report = dataset.report
    if not dataset.users:
        rejections = report.files[0].rejections
        first = min(rejections, key=lambda r: r.line)  # one at least: the table has rows (read_dataset)
        raise IngestError(  # the report is never printed: its first reason says what to fix
            f"no valid rows in {USER_TABLE} ({len(rejections)} rejected): nothing to ingest; the first: {first}"
        )
    funnel = resolve_steps(steps, dataset)
    report.steps = list(funnel)
    if not dataset.has_date_column:
        report.notes.append(f"users without a date get their synthesised visits on {DEFAULT_VISIT_DATE}")
    plan = SynthesisPlan(visit_order(funnel, dataset.default_order()), funnel[-1], seed)
    reached = dataset.pages_by_user()
    users = dataset.users
    batches = [users[i : i + BATCH_USERS] for i in range(0, len(users), BATCH_USERS)]

    if not isinstance(store, Generational):
        raise IngestError(f"the {store.name} store cannot build a dataset aside")
    build = await store.begin_build()
    try:
        report.written = await _write_users(build, batches, reached, plan, progress, len(users))
        _report_progress(progress, "carrying over", 0, 1)
        carried = await build.carry_over({u.user_id for u in users})
        _report_progress(progress, "carrying over", 1, 1)
        report.carried = str(carried)
        _report_progress(progress, "building indexes", 0, 1)
        new = await build.seal()
        _report_progress(progress, "building indexes", 1, 1)
        await new.set_default_funnel(funnel)
        # synthesis keeps each user's visits on their date: only those days (and the carried visits'
        # days) can have rows
        days = {u.date or DEFAULT_VISIT_DATE for u in users if reached.get(u.user_id)} | carried.days
        if days:
            # The embedded store's funnel index, built afresh from what was just written: the rows then
            # come from one engine and one layout of the data, so rerunning an ingest gives the same
            # rows to the last bit (float sums depend on their order). Other stores have nothing to do.
            rebuild = getattr(new, "rebuild_funnel_index", None)
            if rebuild is not None:
                await rebuild()
            _report_progress(progress, "funnel_analytics", 0, len(days))
            report.analytics_rows = await refresh_funnel_analytics(new, funnel, min(days), max(days), days)
            _report_progress(progress, "funnel_analytics", len(days), len(days))
        await build.activate()
    except BaseException:
        await asyncio.shield(build.abandon())
        raise
    report.dataset = build.dataset
    folded = await build.retire(switch_grace_s)
    if folded:
        report.notes.append(f"{folded} live events recorded during the ingest were carried over")
    report.seconds = time.perf_counter() - started
    return report


async def _write_users(
    build: DatasetBuild,
    batches: Sequence[Sequence[UserRow]],
    reached: Mapping[int, Collection[str]],
    plan: SynthesisPlan,
    progress: Progress | None,
    total: int,
) -> dict[str, int]:
    written: Counter[str] = Counter({USERS: 0, USER_SESSIONS: 0, PAGE_VISITS: 0, USER_INTERACTIONS: 0})
    done = 0
    _report_progress(progress, "writing users", 0, total)
    with fewer_gc_pauses():
        pending = asyncio.create_task(asyncio.to_thread(_build_batch, batches[0], reached, plan))
        try:
            for index, batch in enumerate(batches):
                documents = await pending
                if index + 1 < len(batches):
                    # Synthesis (numpy, then dict building) overlaps with the store writing this batch.
                    pending = asyncio.create_task(
                        asyncio.to_thread(_build_batch, batches[index + 1], reached, plan)
                    )
                for collection, docs in documents:
                    if docs:
                        written[collection] += await build.write(collection, docs)
                done += len(batch)
                _report_progress(progress, "writing users", done, total)
        finally:
            if not pending.done():
                pending.cancel()  # the thread finishes on its own; nothing awaits its result
    return dict(written)


def _report_progress(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def check_steps_option(steps: Sequence[str]) -> tuple[str, ...]:
    """``--steps`` as the funnel it names (``home_page`` -> ``home``: ``csv_files.page_name``). It is a
    funnel a client names, so it follows the API's rule for one (at least two distinct, non-empty steps:
    ``validation.check_steps``) with the API's words; breaking it is a usage error (exit code 2). Only a
    default funnel derived from the data may have one step."""
    funnel = tuple(page_name(s) for s in steps)
    try:
        check_steps(funnel, MIN_STEPS_ASKED)
    except BadInput as exc:
        raise ConfigError("--steps", str(exc)) from None
    return funnel


def resolve_steps(steps: Sequence[str] | None, dataset: CsvDataset) -> tuple[str, ...]:
    """The funnel: ``steps`` when given (each a page with data, else a usage error), else the pages by
    decreasing reach."""
    available = dataset.default_order()
    if steps is None:
        if not available:
            raise IngestError("no page rows for known users in the page tables: no funnel to build")
        return tuple(available)
    funnel = check_steps_option(steps)
    # A page whose table the checks before reading accepted (by its file name) can still have no row
    # for a known user: saying only "unknown", with a list that no longer holds it, read as a contradiction.
    tables = {page_of_file(name) for name in dataset.page_files}
    empty = [step for step in funnel if step in tables and step not in available]
    if empty:
        names = ", ".join(f'"{step}"' for step in empty)
        raise ConfigError(
            "--steps",
            f"no page rows for known users in the table of {names}: a step needs at least one user who "
            f"reached it (pages with rows: {', '.join(sorted(available))})",
        )
    check_steps_known(funnel, available)
    return funnel


def check_steps_known(funnel: Sequence[str], pages: Sequence[str]) -> None:
    """Each step is one of ``pages``, by the API's rule and in its words (a usage error, exit code 2)."""
    try:
        check_known_steps(funnel, pages)
    except BadInput as exc:
        raise ConfigError("--steps", str(exc)) from None


def user_document(user: UserRow) -> Document:
    return {
        "user_id": user.user_id,
        "device": user.device,
        "sex": user.sex,
        "date": user.date,
        "attributes": dict(user.attributes),
    }


def _build_batch(
    users: Sequence[UserRow], reached: Mapping[int, Collection[str]], plan: SynthesisPlan
) -> Batch:
    synthesised = synthesise(users, reached, plan)
    # The device invariant (stores/contracts.py): history carries its user's device, whatever synthesis
    # did, because stores answer device filters from it.
    device_of = {u.user_id: u.device for u in users}
    return [
        (USERS, [user_document(u) for u in users]),
        (USER_SESSIONS, carry_user_device(synthesised.sessions, device_of)),
        (PAGE_VISITS, carry_user_device(synthesised.visits, device_of)),
        (USER_INTERACTIONS, synthesised.interactions),
    ]


@contextmanager
def fewer_gc_pauses() -> Iterator[None]:
    """Hundreds of thousands of short-lived dicts trigger the cyclic collector over and over (it was
    ~40 % of synthesis time); documents hold no cycles, so collect less often while ingesting."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
