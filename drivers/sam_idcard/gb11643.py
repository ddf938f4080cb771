"""The check character of a citizen number (GB 11643, ISO 7064 MOD 11-2).

Pure and tiny, and here rather than in the core because the SAM simulator makes synthetic
cards with it and ``drivers`` never imports ``gated``; ``gated.policy.identity`` validates
numbers with the same function.
"""

from __future__ import annotations

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def check_char(first17: str) -> str:
    """Check character of a citizen number from its first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("expected 17 ASCII digits")
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]
