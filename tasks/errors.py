"""The errors of ``tasks``: what is missing, what is bad, and which file says so.

``lra-data`` maps them to its exit codes: :class:`MissingDataError` 1, :class:`DataError` 3.
"""

from __future__ import annotations


class MissingDataError(FileNotFoundError):
    """Raised when a task's source files are absent; the message says how to get them."""


class DataError(ValueError):
    """Bad data: undecodable or malformed source, empty split, corrupt cache.

    The message names the file (and the 1-based line where there is one).
    """


class EmptySplitError(DataError):
    """A split of the source holds no example (e.g. a TSV with only its header)."""


class CacheCorruptError(DataError):
    """A cache file is missing, truncated or differs from what was recorded when it was written.

    The message names the file and says how to rebuild the cache.
    """
