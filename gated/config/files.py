"""Files the config names and the state directory: do they exist, can we read them, are they
kept as tight as a booth needs.

The modes gated wants: directories 0750, files 0640 (owner writes, the ``gated`` group reads,
nobody else). A secret (site key, command key, broker password, TLS key) that others can read,
or that the group or others can change, is refused: with the site key and a list of ID numbers
anybody can recompute pseudonyms. Read by the group is fine: the install keeps secrets
``root:gated 0640`` so the daemon's user reads them without owning them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o750
FILE_MODE = 0o640
UMASK = 0o027  # what the daemon creates gets DIR_MODE and FILE_MODE at most
SECRET_FORBIDDEN = 0o027  # group write, and anything for others


def secret_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot serve as a secret, with the fix; None when it can."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{what} {path} does not exist"
    except OSError as e:
        return f"{what} {path} cannot be read ({e.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return f"{what} {path} is not a regular file"
    if st.st_mode & SECRET_FORBIDDEN:
        return (f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}: others can read it or "
                f"the group can change it; run `chmod 0640 {path}` (owner root or gated, "
                f"group gated)")
    if not os.access(path, os.R_OK):
        return f"{what} {path} is not readable by this user (uid {os.getuid()})"
    return None


def tighten(path: Path, limit: int) -> int | None:
    """Take away the bits of ``path``'s mode beyond ``limit`` if this process owns it; the old
    mode when it changed anything, else None. Files of other owners are left as they are."""
    try:
        st = path.stat()
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~limit == 0 or st.st_uid != os.getuid():
        return None
    try:
        path.chmod(mode & limit)
    except OSError:
        return None
    return mode


def too_open(path: Path, limit: int) -> int | None:
    """``path``'s mode when it has bits beyond ``limit``, else None (also when missing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & ~limit else None
