"""The county's three case lists (优先办, 持续办, 解释办), their time limits in working days, and
the desk's worklist with the cases past their limit first.

Every escalation and callback case (the ``cases`` view, built from the booths' own events) is
in exactly one list: the one a person sorted it into (``case_lists``, ``gated centre sort``),
or else the default of ``[centre.default_lists]`` (an escalation 办不成事找局长 and a 非常不满意
rating are priority, any other bad rating is ongoing; 解释办 is always a person's choice).

A case's limit runs from the day it was opened: ``limit_working_days`` working days after it
(the opening day does not count), to the end of that day in the centre's timezone. Its clock
stops when it is answered: an escalation when it is closed, a callback when the citizen was
called back (or the case closed, if that came first). Working days are Monday to Friday, less
``[centre.calendar] holidays``, plus ``workdays`` (the weekend days worked in exchange, 调休):
the county enters each year's State Council holiday notice there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gated.centre.config import CalendarConfig, CaseList, CentreConfig

MAX_LIMIT_DAYS = 3660  # a limit never looks further ahead than this many calendar days


def is_working_day(d: date, cal: CalendarConfig) -> bool:
    if d in cal.workdays:
        return True
    return d.weekday() < 5 and d not in cal.holidays


def add_working_days(start: date, n: int, cal: CalendarConfig) -> date:
    """The ``n``-th working day after ``start`` (``start`` itself never counts)."""
    d, left = start, n
    for _ in range(MAX_LIMIT_DAYS):
        d += timedelta(days=1)
        if is_working_day(d, cal):
            left -= 1
            if left == 0:
                return d
    return d


def deadline(opened_at: datetime, limit_working_days: int, cal: CalendarConfig,
             tz: ZoneInfo) -> datetime:
    """The end (local midnight) of the last working day a case opened at ``opened_at`` has."""
    last = add_working_days(opened_at.astimezone(tz).date(), limit_working_days, cal)
    return datetime.combine(last + timedelta(days=1), time(0), tz)


def default_list(kind: str, level: str | None, cfg: CentreConfig) -> CaseList:
    d = cfg.default_lists
    if kind == "escalation":
        return d.escalation
    return d.very_dissatisfied if level == "very_dissatisfied" else d.callback


@dataclass(frozen=True)
class WorkItem:
    """One case on the desk's worklist."""

    site: str
    booth: str
    case_id: str
    kind: str
    list: CaseList
    sorted_by: str | None  # None: the default list
    state: str
    opened_at: datetime | None
    deadline: datetime | None
    answered_at: datetime | None
    overdue: bool  # past its limit: unanswered after the deadline, or answered late
    number: str | None
    service: str | None
    counter: str | None
    level: str | None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("opened_at", "deadline", "answered_at"):
            out[k] = out[k].isoformat() if out[k] is not None else None
        out["list"] = str(self.list)
        return out


_CASE_SQL = """
SELECT c.site, c.booth, c.case_id, c.kind, c.state, c.opened_at, c.called_back_at,
       c.closed_at, c.number, c.service, c.counter, c.level, l.list, l.set_by
  FROM cases c LEFT JOIN case_lists l USING (site, booth, case_id)
 WHERE (%(all)s OR c.state <> 'closed') AND (%(site)s::text IS NULL OR c.site = %(site)s)
"""


def worklist(conn: Any, cfg: CentreConfig, *, now: datetime, site: str | None = None,
             include_closed: bool = False, only: CaseList | None = None) -> list[WorkItem]:
    """The cases in their lists, those past their limit first (the longest overdue first),
    then the rest by deadline; a case with no opening event (evicted at the booth) last."""
    tz = ZoneInfo(cfg.timezone)
    items: list[WorkItem] = []
    for row in conn.execute(_CASE_SQL, {"all": include_closed, "site": site}).fetchall():
        (r_site, r_booth, case_id, kind, state, opened, called_back, closed, number, service,
         counter, level, sorted_list, sorted_by) = row
        lst = CaseList(sorted_list) if sorted_list else default_list(kind, level, cfg)
        if only is not None and lst is not only:
            continue
        answered = closed
        if kind == "callback" and called_back is not None:
            answered = min(called_back, closed) if closed is not None else called_back
        limit = cfg.lists[lst].limit_working_days
        due = deadline(opened, limit, cfg.calendar, tz) if opened is not None else None
        overdue = due is not None and (answered or now) > due
        items.append(WorkItem(r_site, r_booth, case_id, kind, lst, sorted_by, state, opened, due,
                              answered, overdue, number, service, counter, level))
    far = datetime.max.replace(tzinfo=tz)
    items.sort(key=lambda i: (not i.overdue, i.deadline or far, i.site, i.booth, i.case_id))
    return items


def sort_case(conn: Any, site: str, booth: str, case_id: str, lst: CaseList, *, by: str,
              note: str = "") -> bool:
    """Put a case into a list (a person's choice, kept over the default). False when the
    centre has no event of that case."""
    known = conn.execute("SELECT 1 FROM cases WHERE site = %s AND booth = %s AND case_id = %s",
                         (site, booth, case_id)).fetchone()
    if known is None:
        return False
    conn.execute(
        "INSERT INTO case_lists (site, booth, case_id, list, set_by, note) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site, booth, case_id) DO UPDATE SET "
        "list = EXCLUDED.list, set_by = EXCLUDED.set_by, note = EXCLUDED.note, set_at = now()",
        (site, booth, case_id, str(lst), by[:64], note[:500]))
    return True
