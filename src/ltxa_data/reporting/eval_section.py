"""The report's section for each swap eval of the build (`ltxa-data eval`, output.dir/evals/<name>/): the
summary with its verdicts, the effect against the seed floor, the worst cases playable side by side, and the
runs that could not be read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl

from ..evaluation.cases import EVALS_DIR, VIDEO_SUFFIXES
from ..evaluation.score import interval_text, worst_cases
from ..recipe import Recipe
from .figures import eval_figure
from .html import esc, filter_box, fmt, html_table


def eval_folders(recipe: Recipe) -> list[Path]:
    """The build's evals that finished (eval.json, written last), by name."""
    root = recipe.output_dir / EVALS_DIR
    return sorted(p.parent for p in root.glob("*/eval.json")) if root.is_dir() else []


def eval_sections(recipe: Recipe, work: Path) -> str:
    """The HTML of every eval, its figures and media written under `work` (the report folder being written)."""
    folders = eval_folders(recipe)
    if not folders:
        return ("<p>No eval yet: <code>ltxa-data export swap-eval OUT --recipe R</code>, generate every run, then "
                "<code>ltxa-data eval R --generated DIR</code>.</p>")
    return "".join(_one(recipe, f, work) for f in folders)


def _one(recipe: Recipe, folder: Path, work: Path) -> str:
    name = folder.name
    info = json.loads((folder / "eval.json").read_text()) if (folder / "eval.json").exists() else {}
    cases = pl.read_parquet(folder / "eval.parquet")
    runs = pl.read_parquet(folder / "eval_runs.parquet")
    summary = pl.read_parquet(folder / "summary.parquet")
    ok_runs = runs.filter(pl.col("status") == "ok").height
    scored = {m: cases.filter((pl.col("measure") == m) & (pl.col("status") == "ok")).height for m in ("voice", "face")}
    head = (f'<h3 id="eval-{esc(name)}">Eval {esc(name)}</h3><p class="muted">{ok_runs} of {runs.height} generated '
            f"files read from <code>{esc(info.get('generated', '?'))}</code> ({fmt(info.get('seconds_per_run'), 2)} s "
            f"per run); cases scored: voice {scored['voice']} of {cases.height // 2}, face {scored['face']} of "
            f"{cases.height // 2}. The effect is how far swapping only the reference moved the two outputs toward "
            "their references' identities (voice: cosine to each identity's mean voice; face: distance to its "
            "dominant face, in closeness); the floor is the same quantity when only the seed changes. Intervals are "
            "95% bootstrap intervals over target identities (or targets, with fewer than 5 identities). These are "
            "proxies: the embedder and the face descriptor, not a listener or a viewer.</p>")
    rows = [(r["measure"], "all" if r["group"] == "all" else f"{r['group']} {r['value']}",
             f"{r['scored']}/{r['cases']}", r["identities"], interval_text(r["effect"], r["effect_lo"], r["effect_hi"]),
             interval_text(r["seed_effect"], r["seed_lo"], r["seed_hi"]),
             interval_text(r["difference"], r["difference_lo"], r["difference_hi"]), fmt(r["accuracy"], 2),
             fmt(r["beyond_floor"], 2), fmt(r["change_ratio"], 2), r["verdict"])
            for r in summary.iter_rows(named=True)]
    table = html_table(["measure", "cases", "scored / asked", "target identities", "effect [95% CI]",
                        "seed floor [95% CI]", "effect - floor [95% CI]", "two-choice accuracy", "beyond the floor",
                        "change / seed change", "verdict"], rows, "small")
    plot = eval_figure(cases, work / "plots" / f"eval-{name}.png")
    parts = [head, table, f'<figure><img class="plot" src="{esc(plot)}" alt="eval {esc(name)}"><figcaption>Swap '
             "effect against the seed floor, per measure: a model that follows the reference sits right of the "
             "floor.</figcaption></figure>", _worst(cases, runs, folder / "media",
                                                         work / "media" / "eval" / name)]
    parts += [f"<p><b>warning:</b> {esc(w)}</p>" for w in info.get("warnings") or []]
    failed = runs.filter(pl.col("status") != "ok")
    if failed.height:
        tid = f"eval-failed-{name}"
        parts.append(f"<p>{failed.height} runs not read:</p>" + filter_box(tid) + html_table(
            ["run", "status", "reason"], failed.select("run_id", "status", "error").head(recipe.report.table_rows)
            .iter_rows(), "small filterable", tid))
    return "".join(parts)


def _worst(cases: pl.DataFrame, runs: pl.DataFrame, kept: Path, media: Path) -> str:
    """Per measure, the scored swap cases with the lowest effect: both outputs and both references, playable from
    the copies the eval kept (`kept`, the eval's media folder), copied into the report's `media`."""
    ref_of = dict(runs.select("run_id", "reference_id").iter_rows())
    out = []
    worst = worst_cases(cases)
    for measure in ("voice", "face"):
        mine = worst.filter(pl.col("measure") == measure)
        if mine.height == 0:
            continue
        out.append(f"<h4>Lowest {measure} effect</h4>")
        for c in mine.iter_rows(named=True):
            cells = []
            for role in ("a", "b"):
                run = c[f"run_{role}"]
                video = _shown(kept, media, run, VIDEO_SUFFIXES)
                audio = _shown(kept, media, ref_of.get(run), (".wav",))
                who = c["identity_a"] if role == "a" else c["identity_b"]
                player = (f'<video controls preload="metadata" width="256" height="256" src="{esc(video)}"></video>'
                          if video else "<p>(the generated file is gone)</p>")
                ref = (f'<audio controls preload="metadata" src="{esc(audio)}"></audio>' if audio else
                       "<p>(its reference could not be read)</p>")
                cells.append(f"<div><div>run {role.upper()}: reference of {esc(who)}</div>{player}<div>its "
                             f"reference:</div>{ref}</div>")
            facts = (f"effect {fmt(c['effect'], 3)} (seed floor {fmt(c['seed_effect'], 3)}); A-run to A "
                     f"{fmt(c['a_to_a'], 3)}, to B {fmt(c['a_to_b'], 3)}; B-run to B {fmt(c['b_to_b'], 3)}, to A "
                     f"{fmt(c['b_to_a'], 3)}")
            out.append(f'<div class="pair"><b>{esc(c["case_id"])}</b> ({esc(c["split"])}, B '
                       f'{"seen" if c["b_in_train"] else "unseen"} in training): {esc(facts)}<div class="row">'
                       f'{"".join(cells)}</div></div>')
    return "".join(out)


def _shown(kept: Path, media: Path, stem: str | None, suffixes: tuple[str, ...]) -> str:
    """The report-relative path of the kept file `stem` copied into `media`; "" when the eval kept none."""
    found = [kept / f"{stem}{s}" for s in suffixes if stem and (kept / f"{stem}{s}").is_file()]
    if not found:
        return ""
    media.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found[0], media / found[0].name)
    return (media / found[0].name).relative_to(media.parents[2]).as_posix()
