"""What the booth does on the state thread with what its devices see: ``logic`` dispatches each
observation to decide, commit and act; the queue (``queueing``), printing and reprints
(``printing``), assist requests and escalations (``cases``), local lists (``lists``), the ticket
document (``ticket``) and the devices as the core sees them (``devices``)."""

from gated.booth.cases import CaseError, CaseKind
from gated.booth.devices import DeviceDirectory
from gated.booth.lists import (
    ListError,
    ListKind,
    Lists,
    SnapshotAssembler,
    canonical,
    parse_snapshot,
    report_refused,
)
from gated.booth.logic import BoothLogic
from gated.booth.notice import clean as clean_notice
from gated.booth.queueing import QueueError, TicketState
from gated.booth.ratings import RatingSource
from gated.booth.ticket import test_ticket_document

__all__ = [
    "BoothLogic", "CaseError", "CaseKind", "DeviceDirectory", "ListError", "ListKind", "Lists",
    "QueueError", "RatingSource", "SnapshotAssembler", "TicketState", "canonical",
    "clean_notice", "parse_snapshot",
    "report_refused", "test_ticket_document",
]
