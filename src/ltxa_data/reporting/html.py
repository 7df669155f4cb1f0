"""Small HTML pieces the report pages share: escaping, tables, numbers, a filter box."""

from __future__ import annotations

import html
from collections.abc import Iterable


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def html_table(header: list[str], rows: Iterable[Iterable[object]], cls: str = "", tid: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<table class="{cls}"{f" id={chr(34)}{tid}{chr(34)}" if tid else ""}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def fmt(x: object, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def filter_box(table_id: str) -> str:
    return (f'<p><input type="search" class="filter" data-table="{table_id}" placeholder="filter rows (any text)" '
            f'aria-label="filter {table_id}"> <span class="shown" data-table="{table_id}"></span></p>')
