"""Compare two builds: every manifest value by value and every shard member by member. Used to show that a change
of structure leaves a build's output as it was:

    python scripts/compare_builds.py OLD_RECIPE NEW_RECIPE [--ignore-column TABLE.COLUMN ...]

The two recipes may live in different checkouts: absolute paths under each recipe's checkout (its folder's
parent) are compared as the same path. Sample and media hashes hash those paths, so across checkouts they are
left out unless `--same-path` says both builds ran under one path. Prints each difference; exits 1 if any.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

from ltxa_data.recipe import Recipe, load_recipe
from ltxa_data.shard_format import iter_shard

HASHES = ("sample_hash", "media_hash")


def _roots(recipe: Recipe) -> list[str]:
    return [str(recipe.base_dir.parent.resolve())]


def _normalise_text(text: str, roots: list[str]) -> str:
    for root in roots:
        text = text.replace(root, "ROOT")
    return text


def _normalise_frame(df: pl.DataFrame, roots: list[str], drop: list[str]) -> pl.DataFrame:
    def clean(e: pl.Expr) -> pl.Expr:
        for root in roots:
            e = e.str.replace_all(root, "ROOT", literal=True)
        return e

    df = df.drop([c for c in drop if c in df.columns])
    return df.with_columns(
        [clean(pl.col(c)) for c, t in df.schema.items() if t == pl.String]
        + [pl.col(c).list.eval(clean(pl.element())) for c, t in df.schema.items() if t == pl.List(pl.String)])


def compare(old: Recipe, new: Recipe, same_path: bool = False, ignore: tuple[str, ...] = ()) -> list[str]:
    """The differences between two builds' manifests and shards (nothing when they are the same)."""
    problems: list[str] = []
    roots = sorted({*_roots(old), *_roots(new)}, key=len, reverse=True)
    drop_all = [] if same_path else list(HASHES)
    names = sorted({p.name for b in (old, new) for p in b.manifests_dir.glob("*.parquet")})
    for name in names:
        a_path, b_path = old.manifests_dir / name, new.manifests_dir / name
        if not (a_path.exists() and b_path.exists()):
            problems.append(f"{name}: only in {'the old' if a_path.exists() else 'the new'} build")
            continue
        table = name.removesuffix(".parquet")
        drop = drop_all + [i.split(".", 1)[1] for i in ignore if i.startswith(table + ".")]
        a, b = (_normalise_frame(pl.read_parquet(p), roots, drop) for p in (a_path, b_path))
        if a.columns != b.columns:
            problems.append(f"{name}: columns differ: old only {sorted(set(a.columns) - set(b.columns))}, new only "
                            f"{sorted(set(b.columns) - set(a.columns))}")
            common = [c for c in a.columns if c in b.columns]
            a, b = a.select(common), b.select(common)
        if a.height != b.height:
            problems.append(f"{name}: {a.height} rows, now {b.height}")
            continue
        problems += [f"{name}: column {c} differs" for c in a.columns if not a[c].equals(b[c])]
    old_tars = {p.relative_to(old.shards_dir) for p in old.shards_dir.rglob("*.tar")}
    new_tars = {p.relative_to(new.shards_dir) for p in new.shards_dir.rglob("*.tar")}
    problems += [f"shard {t}: only in one build" for t in sorted(old_tars ^ new_tars)]
    for tar in sorted(old_tars & new_tars):
        a, b = _members(old.shards_dir / tar, roots, same_path), _members(new.shards_dir / tar, roots, same_path)
        problems += [f"shard {tar}: member {m} differs" for m in sorted(set(a) | set(b)) if a.get(m) != b.get(m)]
    return problems


def _members(path: Path, roots: list[str], same_path: bool) -> dict[str, bytes]:
    out = {}
    for _, _, files in iter_shard(path):
        for name, (ext, data) in files.items():
            if ext == "json" and data[:1] == b"{":
                meta = json.loads(_normalise_text(data.decode(), roots))
                for h in () if same_path else HASHES:
                    meta.pop(h, None)
                data = json.dumps(meta, sort_keys=True).encode()
            out[name] = data
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--same-path", action="store_true", help="both builds ran under one path: compare hashes too")
    ap.add_argument("--ignore-column", action="append", default=[], metavar="TABLE.COLUMN",
                    help="a column one build has on purpose (e.g. targets.gates)")
    args = ap.parse_args(argv)
    problems = compare(load_recipe(args.old), load_recipe(args.new), args.same_path, tuple(args.ignore_column))
    for p in problems:
        print(p)
    print(f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
