"""The hall's own screens, in a web process of its own (``gated hall``): the calling display
with Mandarin voice (``/display``), the counter terminals (``/counter``), the rating pads
(``/rate``), the guard console (``/guard``) and the ticket QR's rating page (``/r``).

It talks to the daemon only through the local control socket (``gated.control``): commands in,
a stream of committed events and status out. It never imports the daemon's layers (state,
booth, commands, uplink, policy; an import-linter contract says so), so it stays small, and a
crash, hang or overload here never delays a gate or loses an event.

``app`` (routes, roles, CSRF), ``actions`` (what each role may ask, checked), ``auth`` (PINs,
sessions, lockouts), ``feed`` (the subscription and the connected pages), ``views`` (what each
page is sent), ``voice`` (phrases, rendering, playback), ``http`` (headers, limits, errors),
``pages`` (HTML shells and assets), ``server`` (uvicorn, ``gated hall passwd``).
"""

from gated.hall.auth import hash_secret, verify_secret
from gated.hall.server import build, passwd, run_hall

__all__ = ["build", "hash_secret", "passwd", "run_hall", "verify_secret"]
