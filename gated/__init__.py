"""gated: the edge daemon of a township service-hall gate booth."""

__version__ = "0.1.0"
