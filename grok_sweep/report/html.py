"""The building blocks of a self-contained HTML page: escaped text, tables, images inlined as data URIs, one style.

Nothing is fetched from anywhere (no script, no font, no stylesheet), so a page opens from file:// on a machine
without network, and reads without JavaScript.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import pandas as pd

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1280px; margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } .l { text-align: left; }
code, pre { background: #f6f6f6; font-size: 12px; } pre { padding: 0.6em; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #eee; } .err { color: #b00020; } .dim { color: #777; }
""".strip()


def esc(value: Any) -> str:
    """Text for HTML: escaped; a missing value (None, NaN, <NA>) empty."""
    if value is None or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def image(path: Path, alt: str) -> str:
    """A PNG inlined as a data URI ('' when the file is not there)."""
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></p>'


def table(df: pd.DataFrame, left: tuple[str, ...] = (), cell: Optional[Callable[[str, Any, pd.Series], str]] = None,
          style: Optional[Callable[[str, Any], str]] = None) -> str:  # fmt: skip
    """A DataFrame as an HTML table: `left` columns aligned left, `cell(column, value, row)` the HTML of a cell
    (escaped text if None), `style(column, value)` an inline style for it."""
    # a long column name may wrap after an underscore (sustained_grokking_step), so the table fits the page
    head = "".join(f'<th class="{"l" if c in left else ""}">{esc(c).replace("_", "_<wbr>")}</th>' for c in df.columns)
    rows = []
    for _, row in df.iterrows():
        tds = []
        for c in df.columns:
            inner = cell(c, row[c], row) if cell else esc(row[c])
            css = style(c, row[c]) if style else ""
            attr = f' style="{css}"' if css else ""
            tds.append(f'<td class="{"l" if c in left else ""}"{attr}>{inner}</td>')
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def pairs(items: list[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    rows = "".join(f'<tr><th class="l">{esc(k)}</th><td class="l">{esc(v)}</td></tr>' for k, v in items)
    return f"<table>{rows}</table>"


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """The whole document: a title, then each (heading, HTML) section that has content."""
    body = "".join(f"<section><h2>{esc(h)}</h2>{content}</section>" for h, content in sections if content)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>\n")  # fmt: skip
