"""The report's figures: the funnel (what each step kept and dropped, and why) and the plots, from the
manifests (polars, only the columns they need)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from ..analysis.splits import SPLITS
from ..gates import REFERENCE_GATES, TARGET_GATES, Gate, rejection
from ..recipe import Recipe
from ..storage import table_path

SPLIT_COLOURS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}


@dataclass
class Step:
    """One step of the funnel: what survived (count and hours) and why the rest did not."""

    name: str
    unit: str
    count: int
    hours: float
    dropped: int = 0
    reasons: list[tuple[str, int, str]] = field(default_factory=list)
    """(reason, rows, one full error as an example), most frequent first."""


def scan_table(m: Path, name: str, columns: Iterable[str]) -> pl.DataFrame | None:
    """The named columns of a manifest, or None when the stage has not written it yet."""
    p = table_path(m, name)
    if not p.exists():
        return None
    have = set(pq.read_schema(p).names)
    return pl.scan_parquet(p).select([c for c in columns if c in have]).collect()


def _reasons(rows: pl.DataFrame, top: int = 6) -> list[tuple[str, int, str]]:
    """The most frequent rejections among rows that are not ok (`gates.rejection`: the gate that rejected them,
    else their error's reason), with an example."""
    bad = rows.filter(pl.col("status") != "ok")
    if bad.height == 0:
        return []
    gates = bad["gates"].to_list() if "gates" in bad.columns else [None] * bad.height
    errors = bad["error"].fill_null("no reason").to_list()
    reasons = pl.DataFrame({"error": errors, "reason": [rejection(e, g) for e, g in zip(errors, gates, strict=True)]})
    grouped = (reasons.group_by("error", "reason").len().sort("error")
               .group_by("reason", maintain_order=True)
               .agg(pl.col("len").sum(), pl.col("error").first().alias("example"))
               .sort(["len", "reason"], descending=[True, False]).head(top))
    return [(r["reason"], int(r["len"]), r["example"]) for r in grouped.iter_rows(named=True)]


def _hours(seconds: float | None) -> float:
    return float(seconds or 0.0) / 3600.0


def span(hours: float) -> str:
    """A duration in the unit that reads best: minutes under an hour, else hours."""
    return f"{hours * 60:,.1f} min" if hours < 1 else f"{hours:,.1f} h"


def funnel(m: Path) -> list[Step]:
    """videos -> speech -> voices -> identities -> targets -> pairs -> shards, from the manifests."""
    steps: list[Step] = []
    videos = scan_table(m, "videos", ["video_id", "duration_s", "status", "error"])
    if videos is None:
        return steps
    ok_videos = videos.filter(pl.col("status") == "ok")
    steps.append(Step("videos", "files", ok_videos.height, _hours(ok_videos["duration_s"].sum()),
                      videos.height - ok_videos.height, _reasons(videos)))
    turns = scan_table(m, "turns", ["video_id", "start_s", "end_s", "overlap", "status", "error"])
    if turns is None:
        return steps
    ok_turns = turns.filter((pl.col("status") == "ok") & ~pl.col("overlap").fill_null(False))
    with_speech = ok_turns["video_id"].unique()
    silent = ok_videos.filter(~pl.col("video_id").is_in(with_speech.implode()))
    failed = turns.filter(pl.col("status") != "ok")
    reasons = _reasons(failed)
    no_speech = silent.filter(~pl.col("video_id").is_in(failed["video_id"].unique().implode())).height
    if no_speech:
        reasons = sorted([*reasons, ("no single-speaker speech found", no_speech, "")], key=lambda r: -r[1])
    steps.append(Step("speech", "videos with speech", with_speech.len(),
                      _hours((ok_turns["end_s"] - ok_turns["start_s"]).sum()), silent.height, reasons))
    voices = scan_table(m, "voices", ["voice_id", "speech_s", "status", "error"])
    if voices is None:
        return steps
    ok_voices = voices.filter(pl.col("status") == "ok")
    steps.append(Step("voices", "voices", ok_voices.height, _hours(ok_voices["speech_s"].sum()),
                      voices.height - ok_voices.height, _reasons(voices)))
    identities = scan_table(m, "identities", ["voice_id", "identity_id", "status", "error"])
    if identities is None:
        return steps
    ok_ids = identities.filter(pl.col("status") == "ok")
    speech = ok_voices.join(ok_ids.select("voice_id"), on="voice_id")["speech_s"].sum()
    steps.append(Step("identities", "identities", ok_ids["identity_id"].n_unique(), _hours(speech),
                      identities.height - ok_ids.height, _reasons(identities)))
    targets = scan_table(m, "targets", ["target_id", "duration_s", "skipped_by", "gates", "status", "error"])
    if targets is None:
        return steps
    ok_targets = targets.filter(pl.col("status") == "ok")
    steps.append(Step("targets", "target windows", ok_targets.height, _hours(ok_targets["duration_s"].sum()),
                      targets.height - ok_targets.height, _reasons(targets)))
    seconds = ok_targets.select("target_id", "duration_s")
    for name, key, unit in (("pairs", "target_id", "pairs"), ("shards", "key", "samples")):
        rows = scan_table(m, name, [key, "status", "error"])
        if rows is None:
            return steps
        ok = rows.filter(pl.col("status") == "ok")
        dur = ok.join(seconds, left_on=key, right_on="target_id", how="left")["duration_s"].sum()
        steps.append(Step(name, unit, ok.height, _hours(dur), rows.height - ok.height, _reasons(rows)))
    return steps


# ---------------------------------------------------------------- plots


def _figure(width: float = 6.4, height: float = 3.6, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, cols) if cols > 1 else [fig.subplots()]
    return fig, list(axes)


def _save(fig, dest: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, format="png")
    return f"{dest.parent.name}/{dest.name}"


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this build", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _hist(ax, series: dict[str, np.ndarray], xlabel: str, what: str, bins: int = 40,
          lines: dict[str, float] | None = None) -> None:
    """Overlaid histograms of named arrays (nulls and non-finite values left out)."""
    arrays = {k: v[np.isfinite(v)] for k, v in series.items()}
    arrays = {k: v for k, v in arrays.items() if v.size}
    if not arrays:
        _empty(ax, what)
        return
    lo = min(float(v.min()) for v in arrays.values())
    hi = max(float(v.max()) for v in arrays.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    for label, v in arrays.items():
        ax.hist(v, bins=edges, alpha=0.6, label=f"{label} ({v.size:,})")
    for label, x in (lines or {}).items():
        ax.axvline(x, color="black", linestyle="--", linewidth=1)
        ax.text(x, ax.get_ylim()[1] * 0.95, f" {label}", fontsize=8, va="top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)


def _values(df: pl.DataFrame | None, col: str) -> np.ndarray:
    if df is None or col not in df.columns or df.height == 0:
        return np.zeros(0)
    return df[col].cast(pl.Float64).drop_nulls().to_numpy()


def plots(recipe: Recipe, dest: Path, steps: list[Step]) -> list[tuple[str, str, str]]:
    """Draw every plot into `dest`; (title, relative path, caption) each."""
    m = recipe.manifests_dir
    out: list[tuple[str, str, str]] = []

    fig, (ax,) = _figure(7.5, 3.2)
    if steps:
        names = [f"{s.name}\n{s.count:,} {s.unit}" for s in steps]
        minutes = max(s.hours for s in steps) < 2
        ax.barh(names[::-1], [s.hours * (60 if minutes else 1) for s in steps][::-1], color="#4c72b0")
        ax.set_xlabel("minutes" if minutes else "hours")
        for i, s in enumerate(steps[::-1]):
            ax.text(s.hours * (60 if minutes else 1), i, f" {span(s.hours)}", va="center", fontsize=8)
    else:
        _empty(ax, "manifests")
    out.append(("Funnel", _save(fig, dest / "funnel.png"), "Time that survives each step: video, single-speaker "
                "speech, voices embedded, voices in identities, then target time."))

    videos = scan_table(m, "videos", ["duration_s", "status"])
    turns = scan_table(m, "turns", ["start_s", "end_s", "status"])
    fig, axes = _figure(9, 3.2, cols=2)
    ok_videos = videos.filter(pl.col("status") == "ok") if videos is not None else None
    _hist(axes[0], {"videos": _values(ok_videos, "duration_s")}, "video duration (s)", "videos")
    turn_s = (turns.filter(pl.col("status") == "ok").select((pl.col("end_s") - pl.col("start_s")).alias("d"))
              if turns is not None else None)
    _hist(axes[1], {"turns": _values(turn_s, "d")}, "speech turn duration (s)", "turns")
    out.append(("Durations", _save(fig, dest / "durations.png"), "Usable duration of each accepted video, and "
                "of each speech turn the diarizer found."))

    targets = scan_table(m, "targets", ["target_id", "duration_s", "speech_ratio", "sync_score", "face_distance",
                                   "skipped_by", "status", "identity_id"])
    references = scan_table(m, "references", ["reference_id", "speech_ratio", "lufs", "gain_db", "snr_db", "peak_dbfs",
                                         "status", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_povrl"])
    pairs = scan_table(m, "pairs", ["key", "target_id", "reference_ids", "identity_id", "split", "status"])
    ok_targets = targets.filter(pl.col("status") == "ok") if targets is not None else None
    ok_refs = references.filter(pl.col("status") == "ok") if references is not None else None
    fig, (ax,) = _figure()
    _hist(ax, {"targets kept": _values(ok_targets, "speech_ratio"),
               "references kept": _values(ok_refs, "speech_ratio")},
          "speech ratio (fraction of the window the speaker talks)", "windows", bins=30)
    out.append(("Speech ratio", _save(fig, dest / "speech_ratio.png"), "How much of each kept target and "
                "reference window its speaker talks."))

    used = None
    if ok_refs is not None and pairs is not None:
        used_ids = pairs.filter(pl.col("status") == "ok").select(pl.col("reference_ids").explode()).unique()
        used = ok_refs.join(used_ids, left_on="reference_id", right_on="reference_ids")
    after = used.with_columns((pl.col("lufs") + pl.col("gain_db").fill_null(0.0)).alias("after")) \
        if used is not None else None
    target_lufs = recipe.references.normalize_lufs
    fig, axes = _figure(9, 3.2, cols=2)
    _hist(axes[0], {"measured, every kept window": _values(ok_refs, "lufs"),
                    "references in pairs, after gain": _values(after, "after")},
          "integrated loudness (LUFS)", "references",
          lines={"target": target_lufs} if target_lufs is not None else None)
    _hist(axes[1], {"every kept window": _values(ok_refs, "snr_db"), "references in pairs": _values(used, "snr_db")},
          "SNR estimate (dB)", "references", lines={"min_snr_db": recipe.references.min_snr_db})
    out.append(("Reference loudness and SNR", _save(fig, dest / "references.png"),
                "Left: loudness as measured and after the planned gain (references.normalize_lufs under the peak "
                "ceiling). Right: SNR of every window that passed the thresholds and of those chosen for pairs; a "
                "gain scales speech and noise alike, so normalisation leaves SNR unchanged."))

    scored = targets.filter(pl.col("sync_score").is_not_null()) if targets is not None else None
    if scored is not None and scored.height:
        fig, axes = _figure(9, 3.2, cols=2)
        kept = scored.filter(pl.col("status") == "ok")
        _hist(axes[0], {"kept": _values(kept, "sync_score"),
                        "removed (active_speaker)": _values(scored.filter(pl.col("skipped_by") == "active_speaker"),
                                                            "sync_score")},
              f"active-speaker score ({recipe.targets.active_speaker.backend})", "scores",
              lines={"min_score": recipe.targets.active_speaker.threshold})
        _hist(axes[1], {"kept": _values(kept, "face_distance"),
                        "removed (face_identity)": _values(scored.filter(pl.col("skipped_by") == "face_identity"),
                                                           "face_distance")},
              "face descriptor distance to the identity's dominant face", "face distances",
              lines={"max_distance": recipe.targets.face_identity.max_distance})
        out.append(("Active speaker and face identity", _save(fig, dest / "active_speaker.png"),
                    "Scores of every target window the gates measured; dashed: the recipe's thresholds."))

    out += _quality_figures(recipe, dest, used)

    ok_pairs = pairs.filter(pl.col("status") == "ok") if pairs is not None else None
    if ok_pairs is not None and ok_pairs.height and targets is not None:
        ok_pairs = ok_pairs.join(targets.select("target_id", pl.col("duration_s").alias("s")), on="target_id",
                                 how="left")
        per_split = ok_pairs.group_by("split").agg(pl.len().alias("samples"), (pl.col("s").sum() / 3600).alias("h"),
                                                   pl.col("identity_id").n_unique().alias("identities"))
        order = [s for s in SPLITS if s in per_split["split"].to_list()]
        per_split = per_split.join(pl.DataFrame({"split": order, "i": range(len(order))},
                                                schema={"split": pl.String, "i": pl.Int64}), on="split").sort("i")
        fig, axes = _figure(9, 3.0, cols=3)
        colours = [SPLIT_COLOURS.get(s, "grey") for s in per_split["split"]]
        for ax, col, label in zip(axes, ("samples", "h", "identities"), ("samples", "hours", "identities"),
                                  strict=True):
            ax.bar(per_split["split"].to_list(), per_split[col].to_list(), color=colours)
            ax.set_ylabel(label)
        out.append(("Splits", _save(fig, dest / "splits.png"), "Samples, target hours and identities per split; every "
                    "identity is held out in exactly one split."))
        per_id = (ok_pairs.group_by("identity_id", "split").agg(pl.len().alias("samples"),
                                                                (pl.col("s").sum() / 3600).alias("h"))
                  .sort(["samples", "identity_id"], descending=[True, False]))
        fig, axes = _figure(11, 3.6, cols=2)
        top = per_id.head(60)
        if top.height:
            axes[0].bar(range(top.height), top["samples"].to_list(),
                        color=[SPLIT_COLOURS.get(s, "grey") for s in top["split"]])
            axes[0].set_xlabel(f"identities, most samples first (top {top.height} of {per_id.height})")
            axes[0].set_ylabel("samples")
            from matplotlib.patches import Patch

            axes[0].legend(handles=[Patch(color=c, label=s) for s, c in SPLIT_COLOURS.items()], fontsize=8)
            axes[1].hist(per_id["h"].to_numpy() * 60, bins=30, color="#4c72b0")
            axes[1].set_xlabel("target minutes per identity")
            axes[1].set_ylabel("identities")
        else:
            _empty(axes[0], "pairs")
            _empty(axes[1], "pairs")
        out.append(("Identities", _save(fig, dest / "identities.png"), "Samples per identity (coloured by split) and "
                    "how target time spreads over identities."))
    return out


QUALITY_TARGET_GATES = ("upscale", "sharpness", "yaw", "pitch", "roll", "burned_text", "speech_ovrl", "speech_sig",
                        "speech_bak", "speech_povrl")
QUALITY_REFERENCE_GATES = ("min_ovrl", "min_sig", "min_bak", "min_povrl")


def _threshold(gate: Gate, recipe: Recipe) -> dict[str, float]:
    t = float(gate.threshold_of(recipe))
    return {f"{gate.op} {t:g}": t}


def _gate_grid(gates: list[Gate], draw: Callable[[Any, Gate], None]) -> Any:
    """A figure of one panel per gate, three to a row, each drawn by `draw(ax, gate)`."""
    from matplotlib.figure import Figure

    cols = min(3, len(gates))
    rows = -(-len(gates) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, gate in zip(axes, gates, strict=False):
        draw(ax, gate)
    for ax in axes[len(gates):]:
        ax.axis("off")
    return fig


def _quality_figures(recipe: Recipe, dest: Path, used: pl.DataFrame | None) -> list[tuple[str, str, str]]:
    """Per material-quality gate the recipe turns on: the values of the windows kept and of those the gate removed
    (targets) or of every kept window and those in pairs (references), with the threshold."""
    m = recipe.manifests_dir
    out = []
    gates = [TARGET_GATES[n] for n in QUALITY_TARGET_GATES if TARGET_GATES[n].applies(recipe)]
    targets = scan_table(m, "targets", ["status", "skipped_by", *{str(g.column) for g in gates}]) if gates else None
    if targets is not None and targets.height:
        def target(ax: Any, gate: Gate) -> None:
            col = pl.col(str(gate.column)).abs() if gate.absolute else pl.col(str(gate.column))
            vals = targets.with_columns(col.alias("v"))
            _hist(ax, {"kept": _values(vals.filter(pl.col("status") == "ok"), "v"),
                       f"removed ({gate.name})": _values(vals.filter(pl.col("skipped_by") == gate.name), "v")},
                  gate.measure, "windows", bins=25, lines=_threshold(gate, recipe))
        out.append(("Target picture and speech quality", _save(_gate_grid(gates, target), dest / "target_quality.png"),
                    "Each picture and speech-quality gate of the target windows: the values of the windows kept and "
                    "of those the gate removed (a window is measured up to the first gate it fails); dashed: the "
                    "recipe's threshold."))
    gates = [REFERENCE_GATES[n] for n in QUALITY_REFERENCE_GATES if REFERENCE_GATES[n].applies(recipe)]
    refs = scan_table(m, "references", ["status", *{str(g.column) for g in gates}]) if gates else None
    if refs is not None and refs.height:
        def reference(ax: Any, gate: Gate) -> None:
            _hist(ax, {"every kept window": _values(refs.filter(pl.col("status") == "ok"), str(gate.column)),
                       "references in pairs": _values(used, str(gate.column))},
                  gate.measure, "references", bins=25, lines=_threshold(gate, recipe))
        out.append(("Reference speech quality", _save(_gate_grid(gates, reference), dest / "reference_quality.png"),
                    "DNSMOS scores of the reference windows that passed every floor, and of those chosen for pairs "
                    "(the draw prefers the best quality band); dashed: the floors."))
    return out


def eval_figure(cases: pl.DataFrame, dest: Path) -> str:
    """Per measure, the swap cases' effect over the seed controls' (the floor): how far swapping only the reference
    moved the outputs toward the right people, against swapping only the seed."""
    fig, axes = _figure(9.6, 3.4, cols=2)
    swaps = cases.filter((pl.col("kind") == "swap") & (pl.col("status") == "ok"))
    for ax, measure in zip(axes, ("voice", "face"), strict=True):
        mine = swaps.filter(pl.col("measure") == measure)
        series = {"swap the reference": _values(mine, "effect"), "swap the seed (floor)": _values(mine, "seed_effect")}
        _hist(ax, series, f"{measure}: effect toward the references' identities", f"scored {measure} cases", bins=30,
              lines={"0": 0.0})
    return _save(fig, dest)
