"""The county centre's side of the uplink (``gated centre``): the reference ingest that
stores every booth's events in PostgreSQL exactly once (``ingest``, ``writer``, ``envelope``,
``schema``), the county's case lists and their time limits (``cases``) and the desk's
commands to booths (``desk``). A top layer: nothing else in gated imports it, and it needs the
``centre`` extra (psycopg), which a booth never installs."""
