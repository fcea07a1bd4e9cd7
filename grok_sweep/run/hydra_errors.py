"""Hydra's errors about a command line, each as one line that says what to type instead.

Hydra prints its options on lines of their own and a grammar error without a hint; the pre-check keeps to one line a
problem, so the options go into the line, and a value the grammar stops at gets the quoting it needs.
"""

from __future__ import annotations

import re
from typing import Optional

from grok_sweep.run.config import schema_keys
from grok_sweep.util.errors import first_line

_OPTIONS = re.compile(r"Available options in '([^']+)':\n((?:\t[^\n]*\n?)+)")
_NOT_DELETED = re.compile(r"Could not delete from config\. '([^']+)' does not exist")
# what Hydra's grammar reads as syntax, not as part of an unquoted value
_SPECIAL = re.compile(r"\s|[~'\"()\[\]{}=&#;,]|[^\x00-\x7f]")


def composition_problem(err: BaseException) -> str:
    """One line for an error of Hydra's composition: the key and Hydra's first line, with the options of a group
    where it lists them, and what deleting a key whose value is null does."""
    cause = err.__cause__ or err
    text = str(cause)
    if (deleted := _NOT_DELETED.search(text)) and deleted.group(1) in schema_keys():
        key = deleted.group(1)
        return (f"~{key}: {key} is null here, and Hydra deletes only keys that hold a value; ~ removes a key (the "
                f"run would lack it), while null already means the key's default: leave {key} out or set "
                f"{key}=null")  # fmt: skip
    key = getattr(cause, "full_key", None)
    line = (f"{key}: " if key else "") + first_line(cause)
    if options := _OPTIONS.search(text):
        names = [o.strip() for o in options.group(2).splitlines() if o.strip()]
        line += f" (the options in {options.group(1)}: {', '.join(names)})"
    return line


def grammar_problem(overrides: list[str], err: BaseException) -> str:
    """One line for an argument Hydra's override grammar cannot read: which one, and how to quote its value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    bad = next((o for o in overrides if not _parses(parser, o)), None)
    said = first_line(err).removeprefix("LexerNoViableAltException: ")
    if bad is None:
        return f"cannot read the command line: {said}"
    key, sep, value = bad.partition("=")
    hint = _quote_hint(key, value) if sep else None
    said = "" if said == bad else f": {said}"  # the lexer's message is the argument itself
    return f"cannot read the command line: {bad!r}{said}" + (f"; {hint}" if hint else "")


def _quote_hint(key: str, value: str) -> Optional[str]:
    if value[:1] in ("'", '"') or not _SPECIAL.search(value):
        return None
    quote = "'" if '"' in value else '"'
    return (f"a value with spaces or any of ~'\"()[]{{}}=&#;, is quoted for Hydra, inside the shell's quotes: "
            f"'{key}={quote}{value}{quote}'")  # fmt: skip


def _parses(parser: object, override: str) -> bool:
    try:
        parser.parse_override(override)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any refusal of Hydra's grammar
        return False
    return True
