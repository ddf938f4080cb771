"""Staff badges on a PC/SC contactless reader: ``driver`` (pyscard), ``atr`` (card types and
UIDs, pure), ``settings``."""

from drivers.pcsc_badge.settings import PcscReaderConfig

__all__ = ["PcscReaderConfig"]
