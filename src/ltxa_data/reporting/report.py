"""`ltxa-data report RECIPE`: a static HTML page of a build that opens from disk, with no server and no
network. Aggregates come straight from the manifests (polars, only the columns they need); media are a
fixed sample (`report.pairs`, `report.contact_sheet`), read from the shards by byte offset, so the report
costs the same for a thousand samples as for a million.

    report/index.html               the page
    report/plots/*.png              the plots (matplotlib)
    report/sheets/<split>.jpg       a contact sheet per split, face-mask boxes in red
    report/media/<key>.mp4          sampled targets with their own audio muxed in (AAC)
    report/media/<key>.ref<i>.wav   their references, as in the shard
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import polars as pl

from .. import __version__
from ..analysis.splits import SPLITS
from ..corpus.scoring import (
    default_truth,
    face_agreement,
    label_agreement,
    load_truth,
    score_face_gates,
    score_identities,
    score_quality_gates,
)
from ..errors import SystemicError
from ..evaluation.cases import EVALS_DIR
from ..ids import short_hash
from ..media import mux_target
from ..recipe import Recipe
from ..removals import Removals
from ..shard_format import read_sample
from ..stages import TABLE_OF
from ..storage import read_frame, table_path
from .attribute_summary import report_html as attribute_html
from .contact_sheet import contact_sheet
from .eval_section import eval_sections
from .figures import Step, funnel, plots, scan_table, span
from .html import esc, filter_box, fmt, html_table

MAX_REFERENCE_PLAYERS = 4


# ---------------------------------------------------------------- media


def sample_keys(shards: pl.DataFrame, per_split: int | dict[str, int]) -> dict[str, pl.DataFrame]:
    """A fixed sample per split: rows evenly spaced in key order (keys start with the video id, so they spread
    over videos), the same on every run of the same build."""
    quotas = per_split if isinstance(per_split, dict) else dict.fromkeys(SPLITS, per_split)
    out = {}
    for split, n in quotas.items():
        rows = shards.filter(pl.col("split") == split).sort("key")
        if rows.height and n:
            out[split] = rows[sorted({i * rows.height // n for i in range(min(n, rows.height))})]
    return out


def spread(available: dict[str, int], n: int) -> dict[str, int]:
    """`n` picks spread as evenly as possible over groups of the given sizes (a small group gives its rest away)."""
    quota = dict.fromkeys(available, 0)
    while n > 0:
        open_groups = [g for g in available if quota[g] < available[g]]
        if not open_groups:
            break
        for g in open_groups[:n]:
            quota[g] += 1
        n -= min(n, len(open_groups))
    return quota


def _pair_media(recipe: Recipe, shards: pl.DataFrame, dest: Path) -> list[dict]:
    """Copy a sample of pairs into `dest/media`; the rows to show them with."""
    counts = {s: shards.filter(pl.col("split") == s).height for s in SPLITS}
    picked = sample_keys(shards, spread(counts, recipe.report.pairs))
    if not picked:
        return []
    chosen = pl.concat(list(picked.values()))
    media = dest / "media"
    media.mkdir(parents=True, exist_ok=True)
    shown = []
    for row in chosen.iter_rows(named=True):
        files = read_sample(recipe.shards_dir, row["shard"], row["offset"], row["nbytes"])
        meta = json.loads(files["json"])
        key = row["key"]
        item = {"key": key, "meta": meta, "video": None, "refs": []}
        if "mp4" in files and "wav" in files:
            mux_target(files["mp4"], files["wav"], media / f"{key}.mp4")
            item["video"] = f"media/{key}.mp4"
        for i in range(min(MAX_REFERENCE_PLAYERS, meta.get("variants", 0))):
            if f"ref{i}.wav" in files:
                (media / f"{key}.ref{i}.wav").write_bytes(files[f"ref{i}.wav"])
                item["refs"].append(f"media/{key}.ref{i}.wav")
        shown.append(item)
    return shown


def _contact_sheets(recipe: Recipe, shards: pl.DataFrame, dest: Path) -> list[tuple[str, str, int]]:
    """(split, relative path, samples drawn) per split with samples."""
    out = []
    for split, rows in sample_keys(shards, recipe.report.contact_sheet).items():
        samples = [read_sample(recipe.shards_dir, r["shard"], r["offset"], r["nbytes"])
                   for r in rows.iter_rows(named=True)]
        drawn = [s for s in samples if "mp4" in s]
        sheet = contact_sheet(drawn)
        if sheet is None:
            continue
        path = dest / "sheets" / f"{split}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path, quality=85)
        out.append((split, f"sheets/{split}.jpg", len(drawn)))
    return out


# ---------------------------------------------------------------- html


def _funnel_html(steps: list[Step]) -> str:
    rows = []
    first = steps[0].hours if steps else 0.0
    for s in steps:
        reasons = "; ".join(f"{n:,} x {r} (e.g. {ex})" if ex and ex != r else f"{n:,} x {r}"
                            for r, n, ex in s.reasons) or "-"
        share = f"{100 * s.hours / first:.0f}%" if first else "-"
        rows.append((s.name, f"{s.count:,} {s.unit}", span(s.hours), share, f"{s.dropped:,}", reasons))
    return html_table(["step", "kept", "duration", "of the video's", "dropped", "most frequent reasons"], rows,
                      "funnel")


def _rejected(recipe: Recipe) -> tuple[list[tuple[str, str, str, str]], int]:
    """Rejected files (videos not ok) and items that failed in later stages, at most `report.table_rows`."""
    m = recipe.manifests_dir
    limit = recipe.report.table_rows
    frames = []
    videos = scan_table(m, "videos", ["video_id", "rel_path", "path", "status", "error"])
    if videos is None:
        return [], 0
    names = (videos.filter(pl.col("status") == "ok").unique("video_id", keep="first")
             .select("video_id", pl.coalesce("rel_path", "path").alias("file")))
    frames.append(videos.filter(pl.col("status") != "ok").select(pl.lit("scan").alias("stage"),
                                                                 pl.coalesce("rel_path", "path").alias("file"),
                                                                 "status", "error"))
    for stage in ("diarize", "embed", "targets", "references", "shard"):
        rows = scan_table(m, TABLE_OF[stage], ["video_id", "key", "status", "error"])
        if rows is None:
            continue
        failed = rows.filter(pl.col("status") == "failed")
        if "video_id" not in failed.columns:  # shards: the key starts with the target's video id
            failed = failed.with_columns(pl.col("key").str.split("-").list.first().alias("video_id"))
        frames.append(failed.join(names, on="video_id", how="left").select(
            pl.lit(stage).alias("stage"), pl.col("file").fill_null(pl.col("video_id")), "status", "error"))
    every = pl.concat(frames)
    return [tuple(r) for r in every.head(limit).iter_rows()], every.height


def _swap_eval(recipe: Recipe) -> tuple[str, int]:
    cases = scan_table(recipe.manifests_dir, "swap_eval", ["case_id", "kind", "split", "target_id", "identity_id",
                                                      "reference_a_id", "reference_b_id", "identity_b", "b_in_train",
                                                      "value_a", "value_b", "seed_a", "seed_b", "status"])
    if cases is None or cases.height == 0:
        return "<p>No swap-eval cases in this build.</p>", 0
    by_value = recipe.pairs.match != "identity"
    ok = cases.filter(pl.col("status") == "ok")
    summary = ok.group_by("split", "kind", "b_in_train").len().sort("split", "kind", "b_in_train")
    seen = f"reference B's {recipe.pairs.match} seen in training" if by_value else "reference B's voice in train"
    top = html_table(["split", "kind", seen, "cases"],
                 [(r["split"], r["kind"], "-" if r["kind"] == "seed" else r["b_in_train"], r["len"])
                  for r in summary.iter_rows(named=True)])
    shown = ok.sort("case_id").head(recipe.report.table_rows)
    values = ["value A", "value B"] if by_value else []
    body = html_table(["case", "kind", "split", "target", "identity", "reference A", "reference B", "identity B",
                   "B in train", *values, "seeds"],
                  [(r["case_id"], r["kind"], r["split"], r["target_id"], r["identity_id"], r["reference_a_id"],
                    r["reference_b_id"], r["identity_b"], r["b_in_train"],
                    *((r["value_a"], r["value_b"]) if by_value else ()), f"{r['seed_a']} / {r['seed_b']}")
                   for r in shown.iter_rows(named=True)], "small filterable", "swap-table")
    return top + filter_box("swap-table") + body, ok.height


def _hygiene(recipe: Recipe) -> str:
    """Duplicate groups (members, representative, match) and take-downs (requests, reasons, videos removed:
    counts only, the report names no removed file)."""

    m = recipe.manifests_dir
    dup = scan_table(m, "duplicates", ["video_id", "group_id", "group_size", "representative", "rel_path", "score",
                                   "offset_s", "status"])
    if dup is None or not recipe.duplicates.detect:
        out = "<p>Copies were not looked for (duplicates.detect is off).</p>"
    else:
        ok = dup.filter(pl.col("status") == "ok").sort("group_id", "representative", "video_id",
                                                       descending=[False, True, False])
        policy = ("targets come from each group's best copy only" if recipe.duplicates.targets == "one"
                  else "targets come from every copy")
        out = (f"<p>{ok['group_id'].n_unique():,} group(s) of copies, {ok.height:,} videos; each group lives in one "
               f"split and gives no references to its own targets; {policy} (duplicates.targets "
               f"{esc(recipe.duplicates.targets)}).</p>")
        if ok.height:
            shown = ok.head(recipe.report.table_rows)
            out += filter_box("duplicates-table") + html_table(
                ["group", "video", "best copy", "agreement", "offset (s)"],
                [(r["group_id"], r["rel_path"], "yes" if r["representative"] else "", fmt(r["score"], 2),
                  fmt(r["offset_s"], 2)) for r in shown.iter_rows(named=True)], "small filterable", "duplicates-table")
    removals = Removals.load(recipe).table
    if removals.height:
        summary = removals.group_by("removal_id", "request", "reason", "requested_at").agg(
            pl.len().alias("videos"), *(pl.col("how").eq(h).sum().alias(h) for h in ("named", "copy", "voice", "label"))
        ).sort("requested_at", "removal_id")
        out += (f"<p>{removals.height:,} video(s) removed by {summary.height:,} take-down request(s); later builds "
                "keep them, their copies and the removed people's voices out.</p>")
        out += html_table(["removal", "request", "reason", "requested", "videos", "named", "copies", "voice", "label"],
                      [(r["removal_id"], r["request"], r["reason"], r["requested_at"], r["videos"], r["named"],
                        r["copy"], r["voice"], r["label"]) for r in summary.iter_rows(named=True)], "small")
    else:
        out += "<p>Nothing was taken down from this build.</p>"
    return out


def _identity_quality(recipe: Recipe, truth: Path | None) -> str:

    m = recipe.manifests_dir
    if not table_path(m, "identities").exists():
        return "<p>Identities have not been built yet.</p>"
    identities = read_frame(m, "identities", ok_only=True)
    targets = scan_table(m, "targets", ["target_id", "video_id", "identity_id", "start_s", "duration_s", "sync_score",
                                   "face_agrees", "skipped_by", "status"])
    if targets is None:
        targets = read_frame(m, "targets")
    lines = label_agreement(identities) + face_agreement(targets)
    path = truth or default_truth(recipe)
    if path.exists():
        known, gt = load_truth(m, path)
        s = score_identities(identities, known)
        rows = [("voices scored", s.voices), ("true identities", s.true_identities),
                ("found identities", s.found_identities), ("purity", f"{s.purity:.4f}"),
                ("inverse purity", f"{s.inverse_purity:.4f}"), ("adjusted Rand index", f"{s.ari:.4f}"),
                ("over-split true identities", s.split_identities),
                ("found identities merging several true ones", s.merged_identities)]
        out = f"<p>Against the ground truth in <code>{esc(path)}</code>:</p>" + html_table(["measure", "value"], rows)
        if gt is not None:
            videos = read_frame(m, "videos", ok_only=True)
            lines += [f"vs ground truth, {g.line()}" for g in score_face_gates(targets, videos, gt)]
            lines += score_quality_gates(targets, read_frame(m, "references"), videos, gt)
    else:
        out = ("<p>No ground truth for this build (a generated corpus's <code>ground_truth.json</code>, or "
               "<code>ltxa-data report --truth FILE.csv</code> with columns video, identity).</p>")
    limit = recipe.report.table_rows
    more = f"<p>... and {len(lines) - limit:,} more lines.</p>" if len(lines) > limit else ""
    return out + "".join(f"<p>{esc(line)}</p>" for line in lines[:limit]) + more


def _pair_html(item: dict) -> str:
    meta = item["meta"]
    refs = meta.get("references") or []
    facts = [("identity", meta.get("identity_id")), ("split", meta.get("split")),
             ("target", f"{meta.get('source')} at {fmt(meta.get('start_s'), 2)} s"),
             ("active-speaker score", fmt(meta.get("sync_score"), 2)),
             ("face distance", fmt(meta.get("face_distance"), 3))]
    video = (f'<video controls preload="metadata" width="256" height="256" src="{esc(item["video"])}"></video>'
             if item["video"] else "<p>(no media in this shard: encode.keep_media is off)</p>")
    players = []
    for i, src in enumerate(item["refs"]):
        r = refs[i] if i < len(refs) else {}
        players.append(f'<div class="ref"><div>reference {i}: {esc(r.get("source", ""))} at '
                       f'{fmt(r.get("start_s"), 2)} s; {fmt(r.get("lufs"))} -> {fmt(r.get("output_lufs"))} LUFS, '
                       f'SNR {fmt(r.get("snr_db"))} dB</div>'
                       f'<audio controls preload="metadata" src="{esc(src)}"></audio></div>')
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return (f'<div class="pair" id="pair-{esc(item["key"])}"><h3>{esc(item["key"])}</h3><div class="row">{video}'
            f'<div><dl>{dl}</dl>{"".join(players)}</div></div></div>')


CSS = """
body{font-family:system-ui,sans-serif;margin:0 2em 3em;color:#222;max-width:1400px}
nav{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;z-index:1}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
table.small{font-size:12px}
img.plot{max-width:100%;display:block;margin:.5em 0}
figure{margin:1em 0}
figcaption{font-size:13px;color:#555}
.pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:.7em}
.pair{border:1px solid #ddd;padding:.5em 1em}
.pair h3{font-size:14px;margin:.2em 0;font-family:monospace}
.row{display:flex;gap:1.5em;flex-wrap:wrap}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px;margin:0 0 .5em}
dt{color:#666}
.ref{font-size:13px;margin:.4em 0}
.muted{color:#777;font-size:13px}
img.sheet{max-width:100%}
"""

SCRIPT = """
document.querySelectorAll('input.filter').forEach(function (box) {
  var table = document.getElementById(box.dataset.table);
  var note = document.querySelector('span.shown[data-table="' + box.dataset.table + '"]');
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), shown = 0, rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var text = rows[i].textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      rows[i].style.display = keep ? '' : 'none';
      if (keep) shown++;
    }
    note.textContent = shown + ' of ' + rows.length + ' rows';
  }
  box.addEventListener('input', apply);
  apply();
});
"""


MARKER = ".ltxa-report"
"""A file in every report folder: the only kind of folder a new report replaces."""


def check_destination(recipe: Recipe, dest: Path) -> None:
    """Refuse a report folder whose replacement would delete anything but an earlier report: a folder that holds
    (or is) the build's outputs or manifests, or a folder with files and no report marker."""
    dest = dest.resolve()
    keep = [("output folder", recipe.output_dir), ("manifests folder", recipe.manifests_dir),
            ("shards folder", recipe.shards_dir)]
    inputs = [recipe.resolve(p).resolve() for p in recipe.input.paths]
    for what, path in [*keep, *(("input folder", p) for p in inputs)]:
        path = path.resolve()
        if dest == path or dest in path.parents:
            raise SystemicError(f"report: {dest} holds the build's {what} {path}; a report replaces its whole folder, "
                                "so give it a folder of its own (report.dir or --out)")
    for path in inputs:
        if path in dest.parents:
            raise SystemicError(f"report: {dest} is inside the input folder {path}; the next scan would take the "
                                "report's videos for inputs")
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / MARKER).is_file())):
        raise SystemicError(f"report: {dest} exists and is not a report folder (no {MARKER}); a report replaces its "
                            "whole folder, so give it a new or empty one (report.dir or --out)")


INPUTS = ".inputs"
"""In a report folder: the hash of what the report was written from (`report_inputs`)."""


def report_inputs(recipe: Recipe, truth: Path | None = None) -> str:
    """A hash of everything a report shows: the manifests' and the finished evals' files (name, size, modification
    time: a build that runs nothing rewrites none), the ground truth's, the recipe, and the toolkit version."""
    files = sorted(recipe.manifests_dir.glob("*.parquet"))
    files += sorted((recipe.output_dir / EVALS_DIR).glob("*/eval.json"))
    truth = truth or default_truth(recipe)
    files += [truth] if truth.exists() else []
    stamps = [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return short_hash(__version__, recipe.model_dump_json(), *stamps)


def report_is_current(recipe: Recipe, dest: Path | None = None) -> bool:
    """Whether the report in `dest` (default: the recipe's) was written from what the build holds now."""
    dest = dest or recipe.report_dir
    done = dest / INPUTS
    return (dest / "index.html").is_file() and done.is_file() and done.read_text().strip() == report_inputs(recipe)


def write_report(recipe: Recipe, dest: Path | None = None, truth: Path | None = None) -> Path:
    """Write the report folder (see the module docstring) and return its index.html. The folder is
    written beside its final place and swapped in, so a killed run leaves the previous report whole; only an
    empty folder or an earlier report is ever replaced (`check_destination`)."""
    t0 = time.perf_counter()
    dest = dest or recipe.report_dir
    check_destination(recipe, dest)
    inputs = report_inputs(recipe, truth)  # before reading anything: a change while writing makes it stale
    work = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    steps = funnel(recipe.manifests_dir)
    figures = plots(recipe, work / "plots", steps)
    shards = scan_table(recipe.manifests_dir, "shards", ["key", "split", "shard", "offset", "nbytes", "status"])
    shards = shards.filter(pl.col("status") == "ok") if shards is not None else pl.DataFrame(
        schema={"key": pl.String, "split": pl.String, "shard": pl.String, "offset": pl.Int64, "nbytes": pl.Int64})
    sheets = _contact_sheets(recipe, shards, work)
    pairs = _pair_media(recipe, shards, work)
    rejected, n_rejected = _rejected(recipe)
    swap_html, n_swap = _swap_eval(recipe)
    quality = _identity_quality(recipe, truth)

    total_bytes = sum(p.stat().st_size for p in recipe.shards_dir.rglob("*.tar")) if recipe.shards_dir.exists() else 0
    last = steps[-1] if steps else None
    head = (f"<p>Build <b>{esc(recipe.name)}</b>: manifests in <code>{esc(recipe.manifests_dir)}</code>, shards in "
            f"<code>{esc(recipe.shards_dir)}</code> ({total_bytes / 2**30:.2f} GiB). Backends: diarize "
            f"{esc(recipe.diarize.backend)}, embed {esc(recipe.embed.backend)}, faces "
            f"{esc(recipe.targets.face.detector)}, active speaker {esc(recipe.targets.active_speaker.backend)}, "
            f"encode {esc(recipe.encode.backend)}. ltxa_data {esc(__version__)}.</p>")
    if last is not None:
        head += f"<p><b>{last.count:,} {last.unit}</b>, {span(last.hours)} of targets.</p>"
    parts = [f"<h1>ltxa_data build report: {esc(recipe.name)}</h1>", head,
             '<h2 id="funnel">Funnel</h2>', _funnel_html(steps) if steps else "<p>Nothing built yet.</p>"]
    parts.append('<h2 id="plots">Plots</h2>')
    for title, src, caption in figures:
        parts.append(f'<figure><img class="plot" src="{esc(src)}" alt="{esc(title)}"><figcaption><b>{esc(title)}.'
                     f"</b> {esc(caption)}</figcaption></figure>")
    parts.append('<h2 id="sheets">Contact sheets</h2><p class="muted">Each target\'s middle frame with its face-mask '
                 "box in red (the region a trainer can mask), its split, identity, source and reference loudness; a "
                 "fixed sample per split.</p>")
    for split, src, n in sheets:
        parts.append(f'<h3>{esc(split)} ({n} samples of {shards.filter(pl.col("split") == split).height:,})</h3>'
                     f'<img class="sheet" src="{esc(src)}" alt="{esc(split)} contact sheet">')
    if not sheets:
        parts.append("<p>No samples with media in the shards.</p>")
    parts.append(f'<h2 id="pairs">Pairs</h2><p class="muted">{len(pairs)} of {shards.height:,} samples: the target '
                 "with its own audio, next to the reference voices it is paired with (all from other clips; "
                 + ("of the same identity" if recipe.pairs.match == "identity" else
                    f"sharing its {esc(recipe.pairs.match)}, from {esc(recipe.reference_speaker)} speakers") + ").</p>")
    parts.append(f'<div class="pairs">{"".join(_pair_html(p) for p in pairs)}</div>')
    parts.append(f'<h2 id="attributes">Attributes</h2>{attribute_html(recipe)}')
    parts.append(f'<h2 id="swap">Swap-eval cases</h2><p class="muted">{n_swap:,} cases.</p>{swap_html}')
    parts.append(f'<h2 id="evals">Evaluations of generated output</h2>{eval_sections(recipe, work)}')
    note = f" (the first {len(rejected):,}; all are in the manifests)" if n_rejected > len(rejected) else ""
    parts.append(f'<h2 id="rejected">Rejected files</h2><p class="muted">{n_rejected:,} rows{note}: files the scan '
                 "rejected, and items that failed in later stages.</p>")
    if rejected:
        parts.append(filter_box("rejected-table") + html_table(["stage", "file", "status", "reason"], rejected,
                                                            "small filterable", "rejected-table"))
    parts.append(f'<h2 id="hygiene">Copies and take-downs</h2>{_hygiene(recipe)}')
    parts.append(f'<h2 id="quality">Identity quality</h2>{quality}')
    parts.append(f'<p class="muted">Written in {time.perf_counter() - t0:.1f} s by <code>ltxa-data report</code>.</p>')
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (("funnel", "funnel"), ("plots", "plots"), ("sheets",
                  "contact sheets"), ("pairs", "pairs"), ("attributes", "attributes"), ("swap", "swap eval"),
                  ("evals", "evals"), ("rejected", "rejected"),
                  ("hygiene", "copies, take-downs"), ("quality", "identity quality")))
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(recipe.name)}: build report'
            f"</title><style>{CSS}</style></head><body><nav>{nav}</nav>{''.join(parts)}"
            f"<script>{SCRIPT}</script></body></html>")
    (work / "index.html").write_text(page, encoding="utf-8")
    (work / MARKER).write_text(f"ltxa_data {__version__} build report of {recipe.name}\n")
    (work / INPUTS).write_text(inputs + "\n")
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    work.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest / "index.html"
