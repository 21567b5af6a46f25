"""The documented limits on what a study holds: anything larger is refused before it is
read whole (on load, on import, and when a user passes it).

README.md's "Nothing finished is lost" section lists these figures; keep the two in step.
"""

from __future__ import annotations

#: The largest journal record (one event's JSON), in bytes.
MAX_RECORD_BYTES = 1 << 20
#: The longest string a record holds where a name or a value goes (parameter and metric
#: names, string values, categorical choices), in characters.
MAX_STRING = 10_000
#: The longest free text a record holds (a failure's reason, a traceback), in characters;
#: longer text is cut to its last MAX_TEXT characters when it is recorded.
MAX_TEXT = 100_000
#: How deeply JSON values may nest inside a record.
MAX_DEPTH = 32
#: The most parameters in a space, and metrics in one result or report.
MAX_PARAMS = 1_000
#: The most choices of one categorical parameter.
MAX_CHOICES = 10_000
#: The most attempts of one trial (imported trials are checked against it).
MAX_ATTEMPTS = 10_000
#: The largest magnitude of an ``Int`` bound (and of a ``Float`` grid's number of values):
#: integers up to it are exact as floats, so each value keeps a unit-cube coordinate of its own.
MAX_EXACT = 2**53
#: Integers a record holds (an int choice of a categorical, a report's step) are 64-bit:
#: from -MAX_INT to MAX_INT - 1.
MAX_INT = 2**63
