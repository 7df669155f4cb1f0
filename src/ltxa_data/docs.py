"""Reference tables for the README, generated from the recipe models and the schemas so they
cannot drift (a test checks that the README holds them verbatim)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from .recipe import Recipe, SplitsConfig
from .schemas import TABLES


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        sub = next((c for c in (f.annotation, *getattr(f.annotation, "__args__", ()))
                    if isinstance(c, type) and issubclass(c, BaseModel) and c is not SplitsConfig), None)
        if sub is not None:
            yield from _fields(sub, f"{prefix}{name}.")
            continue
        if f.is_required():
            default = "required"
        elif isinstance(f.default, BaseModel):
            default = str(f.default.model_dump())
        else:
            default = repr(f.default)
        yield f"{prefix}{name}", default, (f.description or "").replace("|", "\\|")


def recipe_reference() -> str:
    """Every recipe key with its default and meaning, as a markdown table."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{k}` | `{d}` | {m} |" for k, d, m in _fields(Recipe)]
    return "\n".join(rows)


def schema_reference() -> str:
    """Every manifest table and column, as markdown."""
    out = []
    for t in TABLES.values():
        out.append(f"**`{t.name}.parquet`**: one row is {t.row}. Key: {', '.join(f'`{k}`' for k in t.key)}.\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        out += [f"| `{n}` | {typ} | {doc} |" for n, typ, doc in t.fields]
        out.append("| `status` | string | ok / skipped / failed |")
        out.append("| `error` | string | the file (or item) and the reason; set on every row that is not ok |\n")
    return "\n".join(out).rstrip() + "\n"
