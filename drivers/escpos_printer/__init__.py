"""ESC/POS ticket printers: ``driver`` (status and printing), ``codec`` (commands and status
bytes, pure), ``layout`` (a ticket document as bytes), ``settings``."""

from drivers.escpos_printer.settings import EscposPrinterConfig

__all__ = ["EscposPrinterConfig"]
