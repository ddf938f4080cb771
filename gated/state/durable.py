"""Small files that must survive a power cut whole: the seq high-water mark, the session."""

from __future__ import annotations

import os
from pathlib import Path


def replace_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that after a crash the file holds either the old or the
    new text, never a torn one: a temp file beside it, fsynced, renamed over it, and the
    directory fsynced so the rename itself is on disk."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
