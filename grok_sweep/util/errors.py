"""One-line error messages: what every refusal of grok_sweep prints."""

from __future__ import annotations


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line (its type's name if it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
