"""The centre's PostgreSQL schema: what the ingest writes and the views the county reads.

Written by the ingest (each in the transaction of its batch):

- ``events``: every booth event exactly once, unique per (site, booth, seq) and per id;
- ``quarantine``: every message refused, with its reason, its topic and its bytes;
- ``seq_pending``: the seqs (and explained ranges) of events just stored, a queue that the
  sequencer folds into ``booth_seq`` in its own short transaction, so ingest workers never
  wait on each other's booth rows;
- ``booth_status``: the last retained status of every booth.

Derived, always from ``events`` (nothing the booth did not send is made up here): ``booth_gaps``
and ``booth_progress`` (highest contiguous seq, open gaps, explained or not), ``fleet_health``,
``tickets`` and the daily figures ``daily_hall``, ``daily_service``, ``daily_counter``,
``cases`` (escalations and callbacks with the time to each step), ``ratings``,
``ratings_by_service``, ``ratings_by_counter``, ``quarantine_counts``. The desk writes
``case_lists`` (a case's list when a person sorted it) and ``desk_actions`` (an audit of the
commands it sent).

Days are local days in ``centre_settings.timezone`` (``centre_day(ts)``); times are the
booth's ``ts`` (``clock_ok`` says whether its clock was synchronised). ``migrate`` is
idempotent: every start runs it.
"""

from __future__ import annotations

from typing import Any

TABLES = """
CREATE TABLE IF NOT EXISTS centre_settings (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    site text NOT NULL, booth text NOT NULL, seq bigint NOT NULL, id text NOT NULL,
    type text NOT NULL, ts timestamptz NOT NULL, clock_ok boolean NOT NULL, session bigint,
    schema integer NOT NULL, priority text NOT NULL, data jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (site, booth, seq),
    CONSTRAINT events_id_key UNIQUE (id));
CREATE INDEX IF NOT EXISTS events_type_ts ON events (type, ts);
CREATE TABLE IF NOT EXISTS quarantine (
    qid bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL, site text, booth text, reason text NOT NULL, detail text NOT NULL,
    event_id text, seq bigint, payload bytea NOT NULL, worker text NOT NULL);
CREATE INDEX IF NOT EXISTS quarantine_booth ON quarantine (site, booth, reason);
CREATE TABLE IF NOT EXISTS seq_pending (
    pid bigserial PRIMARY KEY, site text NOT NULL, booth text NOT NULL,
    lo bigint NOT NULL, hi bigint NOT NULL, explained boolean NOT NULL);
CREATE TABLE IF NOT EXISTS booth_seq (
    site text NOT NULL, booth text NOT NULL,
    present int8multirange NOT NULL DEFAULT '{}', explained int8multirange NOT NULL DEFAULT '{}',
    max_seq bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, booth));
CREATE TABLE IF NOT EXISTS booth_status (
    site text NOT NULL, booth text NOT NULL, online boolean NOT NULL, state text NOT NULL,
    reason text, version text, status_ts text, received_at timestamptz NOT NULL,
    online_since timestamptz, body jsonb NOT NULL, PRIMARY KEY (site, booth));
ALTER TABLE booth_status ADD COLUMN IF NOT EXISTS session bigint;
CREATE TABLE IF NOT EXISTS case_lists (
    site text NOT NULL, booth text NOT NULL, case_id text NOT NULL,
    list text NOT NULL CHECK (list IN ('priority', 'ongoing', 'explain')),
    set_by text NOT NULL, set_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL DEFAULT '',
    PRIMARY KEY (site, booth, case_id));
CREATE TABLE IF NOT EXISTS desk_actions (
    aid bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), site text NOT NULL,
    booth text NOT NULL, command text NOT NULL, args jsonb NOT NULL, actor text NOT NULL,
    ok boolean, reason text, reply jsonb);
"""

FUNCTIONS = """
CREATE OR REPLACE FUNCTION centre_day(t timestamptz) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (t AT TIME ZONE coalesce(
        (SELECT value FROM centre_settings WHERE key = 'timezone'), 'UTC'))::date $$;
CREATE OR REPLACE FUNCTION seq_span(max_seq bigint) RETURNS int8multirange
    LANGUAGE sql IMMUTABLE AS $$ SELECT int8multirange(int8range(1, max_seq + 1)) $$;
"""

VIEWS = """
CREATE VIEW booth_gaps AS
    SELECT site, booth, lower(r) AS first_seq, upper(r) - 1 AS last_seq,
           upper(r) - lower(r) AS missing, false AS explained
      FROM booth_seq, unnest(seq_span(max_seq) - present - explained) AS r
    UNION ALL
    SELECT site, booth, lower(r), upper(r) - 1, upper(r) - lower(r), true
      FROM booth_seq, unnest((explained * seq_span(max_seq)) - present) AS r;

CREATE VIEW booth_progress AS
    SELECT b.site, b.booth, b.max_seq,
           coalesce((SELECT upper(r) - 1 FROM unnest(b.present + b.explained) AS r
                      WHERE lower(r) = 1), 0) AS contiguous,
           coalesce(g.open_gaps, 0) AS open_gaps, coalesce(g.missing, 0)::bigint AS missing_seqs,
           coalesce(g.explained_gaps, 0) AS explained_gaps,
           coalesce(g.explained_missing, 0)::bigint AS explained_seqs, b.updated_at
      FROM booth_seq b
      LEFT JOIN (SELECT site, booth, count(*) FILTER (WHERE NOT explained) AS open_gaps,
                        sum(missing) FILTER (WHERE NOT explained) AS missing,
                        count(*) FILTER (WHERE explained) AS explained_gaps,
                        sum(missing) FILTER (WHERE explained) AS explained_missing
                   FROM booth_gaps GROUP BY site, booth) g USING (site, booth);

CREATE VIEW quarantine_counts AS
    SELECT site, booth, reason, count(*) AS messages, min(received_at) AS first_at,
           max(received_at) AS last_at
      FROM quarantine GROUP BY site, booth, reason;

CREATE VIEW fleet_health AS
    SELECT coalesce(s.site, p.site) AS site, coalesce(s.booth, p.booth) AS booth,
           coalesce(s.online, false) AS online, coalesce(s.state, 'unknown') AS state,
           s.reason AS offline_reason, s.version, s.session, s.received_at AS status_at,
           s.online_since,
           (s.body -> 'outbox' ->> 'depth')::bigint AS backlog,
           (s.body -> 'outbox' ->> 'oldest_age_s')::double precision AS oldest_unsent_s,
           (s.body ->> 'storage_ok')::boolean AS storage_ok,
           (s.body ->> 'clock_synchronised')::boolean AS clock_synchronised,
           (SELECT count(*) FROM jsonb_each(CASE WHEN jsonb_typeof(s.body -> 'devices')
                   = 'object' THEN s.body -> 'devices' ELSE '{}' END) AS d
             WHERE coalesce(d.value ->> 'state', d.value #>> '{}') <> 'ready')
               AS devices_not_ready,
           s.body -> 'lists' AS lists, p.max_seq, p.contiguous, p.open_gaps, p.missing_seqs,
           coalesce((SELECT sum(messages) FROM quarantine_counts q
                      WHERE q.site = coalesce(s.site, p.site)
                        AND q.booth = coalesce(s.booth, p.booth)), 0)::bigint AS quarantined
      FROM booth_status s FULL JOIN booth_progress p ON p.site = s.site AND p.booth = s.booth;

CREATE VIEW tickets AS
    SELECT site, booth, data ->> 'ticket_id' AS ticket_id,
           (array_agg(data ->> 'number' ORDER BY seq))[1] AS number,
           (array_agg(data ->> 'service' ORDER BY seq)
               FILTER (WHERE type = 'ticket.issued'))[1] AS service,
           coalesce(bool_or((data ->> 'priority')::boolean)
               FILTER (WHERE type = 'ticket.issued'), false) AS priority,
           min(ts) FILTER (WHERE type = 'ticket.issued') AS issued_at,
           min(ts) FILTER (WHERE type = 'ticket.called') AS first_called_at,
           max(ts) FILTER (WHERE type = 'ticket.called') AS last_called_at,
           (array_agg(ts ORDER BY seq DESC) FILTER (WHERE type = 'ticket.closed'
               AND data ->> 'action' IN ('served', 'no_show')))[1] AS closed_at,
           (array_agg(data ->> 'counter' ORDER BY seq DESC)
               FILTER (WHERE data ->> 'counter' IS NOT NULL))[1] AS counter,
           (array_agg(data ->> 'state' ORDER BY seq DESC))[1] AS state
      FROM events
     WHERE type IN ('ticket.issued', 'ticket.called', 'ticket.closed') AND data ? 'ticket_id'
     GROUP BY site, booth, data ->> 'ticket_id';

CREATE VIEW ticket_facts AS
    SELECT t.*, centre_day(coalesce(issued_at, first_called_at)) AS day,
           extract(epoch FROM first_called_at - issued_at) / 60 AS wait_min,
           CASE WHEN state = 'served' THEN extract(epoch FROM closed_at - last_called_at) / 60
           END AS service_min
      FROM tickets t;

CREATE VIEW daily_counter AS
    SELECT site, day, counter, count(*) FILTER (WHERE state = 'served') AS served,
           count(*) FILTER (WHERE state = 'no_show') AS no_shows,
           round(avg(priority::int)::numeric, 3) AS priority_share,
           round(avg(wait_min)::numeric, 1) AS avg_wait_min,
           round(avg(service_min)::numeric, 1) AS avg_service_min
      FROM ticket_facts WHERE counter IS NOT NULL GROUP BY site, day, counter;

CREATE VIEW cases AS
    WITH ev AS (
        SELECT site, booth, type AS kind, data ->> 'case_id' AS case_id, seq, ts, data,
               CASE WHEN data ->> 'state' IN ('acked', 'called_back', 'closed')
                         AND NOT coalesce((data ->> 'reraised')::boolean, false)
                    THEN data ->> 'state' ELSE 'open' END AS step
          FROM events WHERE type IN ('escalation', 'callback') AND data ? 'case_id')
    SELECT site, booth, case_id, min(kind) AS kind,
           CASE max(CASE step WHEN 'acked' THEN 1 WHEN 'called_back' THEN 2
                              WHEN 'closed' THEN 3 ELSE 0 END)
                WHEN 1 THEN 'acked' WHEN 2 THEN 'called_back' WHEN 3 THEN 'closed'
                ELSE 'open' END AS state,
           min(CASE WHEN (data ->> 'reraised')::boolean
                    THEN ts - make_interval(secs => coalesce((data ->> 'unanswered_s')::float, 0))
                    ELSE ts END) FILTER (WHERE step = 'open') AS opened_at,
           min(ts) FILTER (WHERE step = 'acked') AS acked_at,
           min(ts) FILTER (WHERE step = 'called_back') AS called_back_at,
           min(ts) FILTER (WHERE step = 'closed') AS closed_at,
           (array_agg(data ->> 'number' ORDER BY seq))[1] AS number,
           (array_agg(data ->> 'ticket_id' ORDER BY seq))[1] AS ticket_id,
           (array_agg(data ->> 'service' ORDER BY seq)
               FILTER (WHERE data ? 'service'))[1] AS service,
           (array_agg(data ->> 'counter' ORDER BY seq)
               FILTER (WHERE data ? 'counter'))[1] AS counter,
           (array_agg(data ->> 'level' ORDER BY seq) FILTER (WHERE data ? 'level'))[1] AS level,
           (array_agg(data ->> 'reason' ORDER BY seq)
               FILTER (WHERE data ? 'reason'))[1] AS rating_reason,
           (array_agg(data ->> 'source' ORDER BY seq)
               FILTER (WHERE data ? 'source'))[1] AS source,
           max((data ->> 'raises')::int) AS raises,
           (array_agg(data ->> 'by' ORDER BY seq) FILTER (WHERE data ? 'by'))[1] AS handled_by,
           (array_agg(data ->> 'outcome' ORDER BY seq)
               FILTER (WHERE step = 'closed'))[1] AS outcome
      FROM ev GROUP BY site, booth, case_id;

CREATE VIEW case_times AS
    SELECT c.*, extract(epoch FROM acked_at - opened_at) AS to_ack_s,
           extract(epoch FROM called_back_at - opened_at) AS to_call_back_s,
           extract(epoch FROM closed_at - opened_at) AS to_close_s, l.list AS sorted_into,
           l.set_by AS sorted_by
      FROM cases c LEFT JOIN case_lists l USING (site, booth, case_id);

CREATE VIEW ratings AS
    SELECT site, booth, data ->> 'ticket_id' AS ticket_id, data ->> 'number' AS number,
           data ->> 'service' AS service, data ->> 'counter' AS counter,
           data ->> 'level' AS level, coalesce((data ->> 'bad')::boolean, false) AS bad,
           data ->> 'reason' AS reason, data ->> 'source' AS source,
           data ->> 'case_id' AS case_id, ts AS rated_at, centre_day(ts) AS day
      FROM events WHERE type = 'rating';

"""

#: Ratings counted by level over one grouping column: the service, or the counter.
_RATINGS_BY = """
CREATE VIEW ratings_by_{by} AS
    SELECT site, day, {by}, count(*) AS ratings,
           count(*) FILTER (WHERE level = 'very_satisfied') AS very_satisfied,
           count(*) FILTER (WHERE level = 'satisfied') AS satisfied,
           count(*) FILTER (WHERE level = 'basic') AS basic,
           count(*) FILTER (WHERE level = 'dissatisfied') AS dissatisfied,
           count(*) FILTER (WHERE level = 'very_dissatisfied') AS very_dissatisfied,
           round(avg((level IN ('very_satisfied', 'satisfied'))::int)::numeric, 3)
               AS satisfied_share
      FROM ratings GROUP BY site, day, {by};
"""
VIEWS += "".join(_RATINGS_BY.format(by=by) for by in ("service", "counter"))
# The hall's daily ticket figures, and the same per service (plus the time at the counter).
_DAILY_TICKETS = """
CREATE VIEW daily_{name} AS
    SELECT site, day{key}, count(*) FILTER (WHERE issued_at IS NOT NULL) AS tickets,
           count(*) FILTER (WHERE state = 'served') AS served,
           count(*) FILTER (WHERE state = 'no_show') AS no_shows,
           count(*) FILTER (WHERE state IN ('waiting', 'called')) AS unfinished,
           round(avg(priority::int)::numeric, 3) AS priority_share,
           round(avg(wait_min)::numeric, 1) AS avg_wait_min,
           round((percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_min))::numeric, 1)
               AS p90_wait_min{extra}
      FROM ticket_facts GROUP BY site, day{key};
"""
VIEWS += _DAILY_TICKETS.format(name="hall", key="", extra="")
VIEWS += _DAILY_TICKETS.format(
    name="service", key=", service",
    extra=",\n           round(avg(service_min)::numeric, 1) AS avg_service_min")

#: Every view, for ``gated centre show`` and the docs.
VIEW_NAMES = ("fleet_health", "booth_progress", "booth_gaps", "quarantine_counts", "tickets",
              "daily_hall", "daily_service", "daily_counter", "cases", "case_times", "ratings",
              "ratings_by_service", "ratings_by_counter")

#: One advisory lock key (``pg_advisory_xact_lock``): migrations never run twice at once.
_MIGRATE_LOCK = 0x6761746564  # "gated"


def migrate(conn: Any, *, timezone: str) -> None:
    """Create or update every table, function and view in one transaction; set the timezone
    the daily figures use. ``conn`` is a psycopg connection (not in a transaction)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        conn.execute(TABLES)
        conn.execute(FUNCTIONS)
        # Views hold no data: dropped and made again, so a changed view never needs a script.
        conn.execute("DROP VIEW IF EXISTS " + ", ".join((*VIEW_NAMES, "ticket_facts"))
                     + " CASCADE")
        conn.execute(VIEWS)
        conn.execute("INSERT INTO centre_settings (key, value) VALUES ('timezone', %s) "
                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (timezone,))
