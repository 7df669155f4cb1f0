"""The reference tables of docs/reference.md, generated from the recipe models and the schemas so they
cannot drift. `python -m ltxa_data.reporting.docs docs/reference.md` rewrites the marked sections; a test
checks that the file is current."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from ..analysis.fingerprint import FINGERPRINT_FIELDS
from ..recipe import Recipe, SplitsConfig
from ..removals import DESCRIPTIONS, SCHEMA
from ..schemas import EVAL_TABLES, TABLES


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        sub = next((c for c in (f.annotation, *getattr(f.annotation, "__args__", ()))
                    if isinstance(c, type) and issubclass(c, BaseModel) and c is not SplitsConfig), None)
        if sub is not None:
            keyed = getattr(f.annotation, "__origin__", None) is dict  # e.g. executor.resources.<stage>.cpus
            yield from _fields(sub, f"{prefix}{name}.<{'stage' if name == 'resources' else 'key'}>." if keyed
                               else f"{prefix}{name}.")
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
    for t in (*TABLES.values(), *EVAL_TABLES.values()):
        out.append(f"**`{t.name}.parquet`**: one row is {t.row}. Key: {', '.join(f'`{k}`' for k in t.key)}.\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        out += [f"| `{n}` | {typ} | {doc} |" for n, typ, doc in t.fields]
        out.append("| `status` | string | ok / skipped / failed |")
        out.append("| `error` | string | the file (or item) and the reason; set on every row that is not ok |\n")

    out.append("**`removals.parquet`** (written by `ltxa-data remove`, read by every build): one row is a removed "
               "video. Key: `fingerprint`.\n")
    out.append("| column | type | meaning |\n|---|---|---|")
    fp_docs = {n: f"its perceptual fingerprint: {d}" for n, _, d in FINGERPRINT_FIELDS}
    out += [f"| `{f.name}` | {f.type} | {DESCRIPTIONS.get(f.name) or fp_docs[f.name]} |" for f in SCHEMA]
    return "\n".join(out).rstrip() + "\n"


SECTIONS = {"recipe-reference": recipe_reference, "schema-reference": schema_reference}


def render(text: str) -> str:
    """`text` with every `<!-- NAME -->...<!-- /NAME -->` section regenerated."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- {name} --> section")
        text = pattern.sub(lambda m, make=make: m.group(1) + make().rstrip("\n") + m.group(2), text)
    return text


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        path = Path(arg)
        path.write_text(render(path.read_text()))
