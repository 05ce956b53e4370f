"""Seeds of the data generators: stable across processes, platforms and ``PYTHONHASHSEED``.

A generator splits its work into chunks (ListOps) or batches (Pathfinder) and seeds each from
a string key, so the output does not depend on how many worker processes made it.
"""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object) -> int:
    """64-bit seed from ``parts`` joined by ``/`` (SHA-256, first 8 bytes, little-endian)."""
    key = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
