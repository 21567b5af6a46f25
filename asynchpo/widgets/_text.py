"""Any value a study holds, as text a view can show.

A study file is data from anywhere: its names, parameters, workers and errors can hold any
JSON value, markup or control characters among them. These functions turn any value into
short text and never raise; :func:`markup` also escapes it for HTML (text and attribute
values alike), so that nothing a study holds is ever read as markup.
"""

from __future__ import annotations

import html
import itertools
import math
import numbers
from collections.abc import Mapping
from typing import Any

LONG = 200  # characters of one value shown at most
PARAMS = 30  # parameters listed at most
EXACT = 10**16  # integers below this are shown digit by digit

ELLIPSIS = "\u2026"


def real(value: Any) -> float | None:
    """``value`` as a finite float when it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        x = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return x if math.isfinite(x) else None


def number(value: Any, spec: str = ".4g") -> str:
    """A number formatted with ``spec`` (an integer under ``EXACT`` exactly); anything else,
    a non-finite or a huge number among them, as :func:`plain` text."""
    x = real(value)
    if x is None:
        return plain(value)
    if isinstance(value, numbers.Integral) and abs(x) < EXACT:
        return str(int(value))
    return format(x, spec)


def _huge(value: int) -> str:
    digits = math.floor(math.log10(abs(value)))
    return f"{'-' if value < 0 else ''}~1e+{digits}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and real(value) is None:
        return _huge(value)  # past a float, and maybe past str()'s limit on digits
    if real(value) is not None:
        return number(value)
    for show in (str, repr):
        try:
            text = show(value)
        except Exception:  # any object's own str() may raise
            continue
        if isinstance(text, str):
            return text
    return f"<{type(value).__name__}>"


def plain(value: Any, limit: int = LONG, lines: bool = False) -> str:
    """``value`` as one short line of printable text: control characters (and, unless
    ``lines``, line breaks) are written as escapes, and text past ``limit`` characters is
    cut with an ellipsis. Never raises."""
    try:
        text = _text(value)
    except Exception:  # a view draws something, whatever the value
        text = f"<{type(value).__name__}>"
    if len(text) > 4 * limit:
        text = text[: 4 * limit]
    text = printable(text, lines)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def printable(text: str, lines: bool = False) -> str:
    """``text`` with control characters (and, unless ``lines``, line breaks) written as
    escapes: a study file is data, and never drives a terminal."""
    return "".join(c if c.isprintable() or (lines and c == "\n") else repr(c)[1:-1] for c in text)


def markup(value: Any, limit: int = LONG, lines: bool = False) -> str:
    """:func:`plain` text escaped for HTML, quotes too: safe as an element's text and as an
    attribute's quoted value."""
    return html.escape(plain(value, limit, lines), quote=True)


def params(values: Any, limit: int = 3 * LONG) -> str:
    """``a=1, b=relu``: a trial's parameters as one line of :func:`plain` text."""
    if not isinstance(values, Mapping):
        return plain(values, limit)
    try:
        items = list(itertools.islice(values.items(), PARAMS + 1))
    except Exception:
        return plain(values, limit)
    text = ", ".join(f"{plain(k, 60)}={plain(v, 60)}" for k, v in items[:PARAMS])
    if len(items) > PARAMS:
        text += ", " + ELLIPSIS
    return plain(text, limit)


def clock(seconds: Any) -> str:
    """``75.2`` -> ``"1:15"``; ``None`` (or anything but a finite number) -> ``"-"``."""
    x = real(seconds)
    if x is None:
        return "-"
    s = round(x)
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
