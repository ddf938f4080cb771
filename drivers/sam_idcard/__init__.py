"""Resident ID cards through a GA/T 467 SAM module: ``driver`` (the reader), ``codec`` (frames),
``text`` (the card's text block), ``gb11643`` (check characters), ``settings``."""

from drivers.sam_idcard.settings import SAM_SETTINGS, SamReaderConfig

__all__ = ["SAM_SETTINGS", "SamReaderConfig"]
