"""Sequence numbers that will never be delivered, as ``[first, last]`` ranges.

Why ranges: the centre orders a booth's events by ``seq`` and must tell a gap it should wait
for (events still in the outbox, a link that is down) from a gap that will never fill (events
evicted from a full outbox, purged after the retention period, lost with a damaged database).
Counts per type say how many went, not which; a list of ranges says exactly which numbers to
stop waiting for, and stays short because evicted and purged rows come in runs.

A report can be large (a disk full frees half the outbox), so ``parts`` splits the ranges
over several events of at most ``MAX_RANGES`` each: every event stays well under a broker's
packet limit, and together they list every number.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_RANGES = 500  # per event: about 12 KB of JSON at most


def merge(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted, merged ranges of ``seqs`` (in any order, duplicates allowed)."""
    out: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if out and out[-1][1] + 1 == seq:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


class SeqRanges:
    """Collects numbers as they are evicted; runs of consecutive numbers cost one pair."""

    def __init__(self) -> None:
        self._runs: list[list[int]] = []

    def add(self, seq: int) -> None:
        runs = self._runs
        if runs and runs[-1][1] + 1 == seq:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])

    def __bool__(self) -> bool:
        return bool(self._runs)

    def clear(self) -> None:
        self._runs = []

    def take(self) -> list[list[int]]:
        """The collected ranges, sorted and merged; the collection starts empty again."""
        runs, self._runs = self._runs, []
        runs.sort()
        out: list[list[int]] = []
        for first, last in runs:
            if out and first <= out[-1][1] + 1:
                out[-1][1] = max(out[-1][1], last)
            else:
                out.append([first, last])
        return out


def parts(ranges: list[list[int]], size: int = MAX_RANGES) -> list[list[list[int]]]:
    """``ranges`` in consecutive slices of at most ``size`` (one slice, maybe empty, at least)."""
    return [ranges[i:i + size] for i in range(0, len(ranges), size)] or [[]]


def count(ranges: list[list[int]]) -> int:
    return sum(last - first + 1 for first, last in ranges)
