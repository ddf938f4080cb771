"""Runs last (``runs_last``, see ``conftest.py``): nothing the suite produced holds a test
card's full ID number or name.

Besides the test cards' own strings it looks for any well-formed ID number (right check
character, real birth date), so the simulator's random cards are covered as well.

Scanned: every test's captured stdout, stderr and log records (see ``conftest.py``), and every
file under pytest's temporary directory: daemon logs, SQLite databases (every text cell of every
table, outbox bodies included, read through a copy so a live WAL is applied), ticket text files
and MQTT payload captures written by the uplink tests. It checks what the tests that ran before
it in the same session produced, so run it as part of the suite.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gated.policy.identity import validate_id_number
from tests.support.cards import PERSONAL_STRINGS

SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_FILE = 64 * 1024 * 1024


#: Any 18-character resident-style number standing alone: the simulator's random cards too.
_NUMBER_SHAPE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9X](?![0-9A-Za-z])")


def _valid_numbers(text: str) -> list[str]:
    """Full numbers with a right check character and a real birth date, i.e. not an id or
    a counter that happens to have 18 digits."""
    return [m for m in _NUMBER_SHAPE.findall(text) if validate_id_number(m)]


def _needles() -> list[tuple[str, bytes]]:
    out = []
    for s in PERSONAL_STRINGS:
        for enc in ("utf-8", "gb18030"):
            try:
                out.append((s, s.encode(enc)))
            except UnicodeEncodeError:
                continue
    return out


def _sqlite_text(path: Path) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copy2(path, copy)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.copy2(side, copy.with_name(copy.name + suffix))
        conn = sqlite3.connect(copy)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    for cell in row:
                        if isinstance(cell, str):
                            yield f"{path}:{table}", cell
                        elif isinstance(cell, bytes):
                            yield f"{path}:{table}", cell.decode("utf-8", "replace")
        except sqlite3.DatabaseError:
            return  # a deliberately corrupted test database; its salvage copy is scanned
        finally:
            conn.close()


@pytest.mark.runs_last
def test_no_personal_data_anywhere(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    needles = _needles()
    assert needles, "no test card strings to look for"
    hits: list[str] = []
    scanned = 0
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_FILE:
            continue
        if path.name.endswith(("-wal", "-shm")):
            continue  # read together with their database
        raw = path.read_bytes()
        scanned += 1
        if raw.startswith(SQLITE_MAGIC):
            for where, text in _sqlite_text(path):
                hits += [f"{where}: {s!r}" for s in PERSONAL_STRINGS if s in text]
                hits += [f"{where}: number {n!r}" for n in _valid_numbers(text)]
            continue
        hits += [f"{path}: {s!r}" for s, b in needles if b in raw]
        hits += [f"{path}: number {n!r}" for n in _valid_numbers(raw.decode("latin-1"))]
    assert scanned > 0
    assert not hits, "personal data found:\n" + "\n".join(sorted(set(hits))[:50])
