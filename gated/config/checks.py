"""The files and directories a config names, as the user running gated sees them now: what
``gated check-config`` and ``gated run`` check before anything runs (``check_config``), so a
config that cannot work on this booth is refused with its path and line, not found out at the
first visitor.
"""

from __future__ import annotations

import os
from pathlib import Path

from gated.config.files import secret_problem
from gated.config.model import GatedConfig
from gated.config.problems import Problem


def file_problems(cfg: GatedConfig) -> list[Problem]:
    """The files and directories the config names, as this user sees them now."""
    out: list[Problem] = []
    m = cfg.mqtt
    secrets: list[tuple[str, Path | None, str]] = [("site.key_file", cfg.site.key_file,
                                                   "site key file")]
    if m.enabled:
        secrets += [("mqtt.command_key_file", m.command_key_file, "command key file"),
                    ("mqtt.username_file", m.username_file, "broker user file"),
                    ("mqtt.password_file", m.password_file, "broker password file")]
        if m.tls is not None:
            secrets.append(("mqtt.tls.key_file", m.tls.key_file, "TLS key file"))
            for key, path in (("mqtt.tls.ca_file", m.tls.ca_file),
                              ("mqtt.tls.cert_file", m.tls.cert_file)):
                if path is not None and not os.access(path, os.R_OK):
                    out.append((key, f"{path} does not exist or cannot be read"))
    a = cfg.appointments
    secrets.append(("appointments.hmac_key_file", a.hmac_key_file, "appointment key file"))
    if a.public_key_file is not None and not os.access(a.public_key_file, os.R_OK):
        out.append(("appointments.public_key_file",
                    f"{a.public_key_file} does not exist or cannot be read"))
    for key, path, what in secrets:
        if path is None:
            continue
        problem = secret_problem(path, what)
        if key == "site.key_file":
            short = problem is None and path.stat().st_size < 32
            if short:
                problem = f"{what} {path} holds fewer than 32 bytes"
            if short or not path.exists():
                problem = (f"{problem}; create one with `gated keygen {path}` (or copy this "
                           f"site's key from another booth)")
        if problem is not None:
            out.append((key, problem))
    if m.enabled and (m.username_file is None) != (m.password_file is None):
        out.append(("mqtt.password_file" if m.password_file is None else "mqtt.username_file",
                    "username_file and password_file go together"))
    out += _state_dir_problems(cfg.state_dir)
    return out


def _state_dir_problems(path: Path) -> list[Problem]:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [("state_dir", f"{existing} is not a directory")]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [("state_dir", f"{existing} is not writable by this user (uid {os.getuid()}); "
                 f"chown it to the daemon's user or set state_dir")]
    return []
