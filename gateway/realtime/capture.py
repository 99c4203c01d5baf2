"""Capture, as ``POST /events`` and ``trackEvents`` both call it: validate, write durably, report.

The answer comes after the group commit (gateway/realtime/writer.py): every id in ``accepted`` is in the
document store, durably, and any cached answer it changes is no longer served.

Validation comes first and writes nothing: a fault of ours while validating (``batch.ValidationFault``)
leaves the batch unwritten and uncounted, and the caller answers it as an internal error (a retry with
the same eventIds is safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadInput
from gateway.ops.metrics import EVENTS
from gateway.realtime.batch import Rejected, claimed_id, validate
from gateway.realtime.events import utc_now
from gateway.realtime.runtime import Realtime, running


class TooManyEvents(BadInput):
    """More events in one batch than FUNNEL_EVENTS_MAX_BATCH (HTTP 413)."""


@dataclass(frozen=True)
class CaptureResult:
    accepted: list[str]  # every valid event's id, once, in batch order: stored now or before
    duplicates: list[str]  # the accepted ids that changed nothing: stored before this request
    rejected: list[Rejected]  # index in the batch, the event's id if it had one, the reason


async def capture(runtime: Realtime | None, raw_events: Sequence[Any]) -> CaptureResult:
    realtime = running(runtime)
    if not raw_events:
        raise BadInput("no events: send at least one")
    if len(raw_events) > realtime.max_batch:
        raise TooManyEvents(
            f"{len(raw_events)} events in one batch; at most {realtime.max_batch} (FUNNEL_EVENTS_MAX_BATCH)"
        )
    # Raises ValidationFault on a fault of ours: before the write and the metrics, so nothing of the batch
    # is stored, acknowledged or counted (a rejection would blame the client).
    checked = validate(raw_events, utc_now(), realtime.max_skew, realtime.max_age)
    written = await realtime.writer.write(checked.events)
    rejected = list(checked.rejected)
    accepted: list[str] = []
    for event, index in zip(checked.events, checked.indexes, strict=True):
        reason = written.refused.get(event.event_id)
        if reason is None:
            accepted.append(event.event_id)
        else:
            rejected.append(Rejected(index, claimed_id(raw_events[index]), reason))
    # A later copy of an id in the batch is the same event: it shares its first copy's verdict, and
    # is dropped whatever it holds. Accepted, it is listed nowhere else (the id is in ``accepted``, and
    # in ``duplicates`` only if it was stored before: then it changed nothing).
    for index, event_id in checked.repeats:
        reason = written.refused.get(event_id)
        if reason is not None:
            rejected.append(Rejected(index, event_id, reason))
    if written.refused:
        rejected.sort(key=lambda r: r.index)
    duplicates = [event_id for event_id in accepted if event_id not in written.new]
    result = CaptureResult(accepted=accepted, duplicates=duplicates, rejected=rejected)
    EVENTS.labels("accepted").inc(len(result.accepted))
    EVENTS.labels("duplicate").inc(len(result.duplicates))
    EVENTS.labels("rejected").inc(len(result.rejected))
    return result
