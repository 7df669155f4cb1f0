"""`ltxa-data explain RECIPE KEY`: one sample's whole story, read from the manifests and its shard json.

Sections: the sample, its source video (probe facts, fingerprint, scene cuts around the window), why this
window (its checks against the recipe, and the other windows of the video with why they were skipped), the
speech turns in the target and reference windows, the voice, the identity, why these references (their
measures against the thresholds, and the identity's other candidate references with why they were not
chosen), the split, every score next to its threshold, and the lineage (source files, models with their
hashes, toolkit version, recipe hash).

KEY is a sample key (= its target_id), a target_id without a sample (a skipped target: its story up to
where it stopped), or an unambiguous prefix of one. Only the rows of that sample are read (parquet scans
with filters), so it is quick on a large build.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..analysis.splits import identity_groups
from ..gates import GATES, reason_of
from ..lineage import recipe_hash
from ..recipe import TARGET_FPS, TARGET_FRAMES, Recipe
from ..schemas import empty
from ..shard_format import sample_json
from ..stages.pairs import draw_key
from ..stages.shard import sample_lineage
from ..stages.targets import window_tries
from ..storage import table_path
from .explain_match import match_section

WIDTH = 24
"""Label column width."""


class ExplainError(LookupError):
    """A key that names no sample or target, or several."""


def _frame(m: Path, name: str, where: pl.Expr | None = None, columns: list[str] | None = None) -> pl.DataFrame:
    """A manifest table's rows matching `where`, only `columns` when given (an empty table when it has not
    been built)."""
    path = table_path(m, name)
    if not path.exists():
        df = pl.from_arrow(empty(name))
        assert isinstance(df, pl.DataFrame)
        return df.select(columns) if columns else df
    lf = pl.scan_parquet(path)
    lf = lf.filter(where) if where is not None else lf
    return (lf.select(columns) if columns else lf).collect()


def _one(m: Path, name: str, where: pl.Expr) -> dict[str, Any] | None:
    df = _frame(m, name, where)
    return df.row(0, named=True) if df.height else None


def _keys(m: Path, name: str, column: str) -> list[str]:
    path = table_path(m, name)
    return pl.scan_parquet(path).select(column).collect().get_column(column).to_list() if path.exists() else []


def resolve_key(recipe: Recipe, key: str) -> str:
    """The sample key or target_id that `key` names: itself, or the one id it is a prefix of. An unknown
    or ambiguous key raises `ExplainError` naming it, with close matches or the candidates."""
    m = recipe.manifests_dir
    if not table_path(m, "targets").exists():
        raise ExplainError(f"no targets table in {m}: build the recipe first (`ltxa-data build`)")
    ids = sorted(set(_keys(m, "pairs", "key")) | set(_keys(m, "targets", "target_id")))
    if key in ids:
        return key
    i = bisect.bisect_left(ids, key)
    starting = []
    while i < len(ids) and ids[i].startswith(key) and len(starting) <= 10:
        starting.append(ids[i])
        i += 1
    if len(starting) == 1 and key:
        return starting[0]
    if starting:
        more = " ..." if len(starting) > 10 else ""
        raise ExplainError(f"key {key!r} is ambiguous: it starts {', '.join(starting[:10])}{more}; give more of it")
    close = difflib.get_close_matches(key, ids, n=5, cutoff=0.75) if len(ids) <= 200_000 else []
    if not close:  # the ids sharing the longest prefix with it
        j = bisect.bisect_left(ids, key)
        near = ids[max(0, j - 2): j + 2]
        close = [k for k in near if _common(k, key) >= 4]
    hint = (f"; close matches: {', '.join(close)}" if close
            else f"; it holds {len(ids)} keys, e.g. {ids[0]}" if ids else "")
    raise ExplainError(f"no sample or target {key!r} in {m}{hint}")


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


# ------------------------------------------------------------------------------------------- formatting


def _n(x: Any, digits: int = 3) -> str:
    """A number for the page: rounded, `-` when unknown."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.4g}"
    return str(x)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def _span(a: float, b: float) -> str:
    return f"{a:.2f}-{b:.2f} s"


class _Page:
    """The text being written, and every check met on the way (for the scores section)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.checks: list[tuple[str, str, str, str, bool]] = []

    def section(self, title: str, subject: str = "") -> None:
        if self.lines:
            self.lines.append("")
        head = title.upper() + (f" {subject}" if subject else "")
        self.lines += [head, "-" * len(head)]

    @staticmethod
    def _label(label: str, indent: int) -> str:
        return " " * indent + (label + ":").ljust(WIDTH - 1) + " "

    def kv(self, label: str, value: Any, indent: int = 2) -> None:
        self.lines.append(f"{self._label(label, indent)}{value}")

    def line(self, text: str, indent: int = 2) -> None:
        self.lines.append(" " * indent + text)

    def check(self, subject: str, what: str, value: Any, op: str, threshold: Any, passed: bool,
              setting: str, indent: int = 2) -> None:
        """A score against its threshold, written here and kept for the scores section."""
        v, t = _n(value), " ".join(filter(None, (op, _n(threshold))))
        verdict = "pass" if passed else "FAIL"
        self.lines.append(f"{self._label(what, indent)}{v}  {t}  ({setting})  {verdict}")
        self.checks.append((subject, what, v, f"{t}  ({setting})", passed))

    def gate(self, subject: str, record: dict, suffix: str = "", indent: int = 2) -> None:
        """A gate's record (`gates`), as the stage that decided it wrote it."""
        gate = GATES.get(record["name"])
        measure, op, setting = (gate.measure, gate.op, gate.setting) if gate else (record["name"], "vs", "?")
        self.check(subject, measure + suffix, record["value"], op, record["threshold"], record["passed"], setting,
                   indent)

    def table(self, header: list[str], rows: Iterable[Iterable[Any]], indent: int = 4) -> None:
        rows = [[str(c) for c in r] for r in rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        for r in [header, *rows]:
            self.lines.append(" " * indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _reason(error: str | None, rel_path: str | None = None) -> str:
    """A row's error without its leading subject (the file or id)."""
    return reason_of(error, rel_path or "")


# --------------------------------------------------------------------------------------------- the story


def explain(recipe: Recipe, key: str) -> str:
    """The story of one sample (or skipped target) as plain text; see the module docstring."""
    key = resolve_key(recipe, key)
    return _Story(recipe, key).write()


class _Story:
    def __init__(self, recipe: Recipe, key: str) -> None:
        self.recipe, self.m, self.key = recipe, recipe.manifests_dir, key
        self.page = _Page()
        self.videos_seen: dict[str, dict] = {}
        self.pair = _one(self.m, "pairs", pl.col("key") == key)
        tid = self.pair["target_id"] if self.pair else key
        self.target = _one(self.m, "targets", pl.col("target_id") == tid)
        if self.target is None:
            raise ExplainError(f"{key!r}: the pairs table names target {tid!r}, which the targets table lacks "
                               "(rebuild the recipe)")
        self.video = self._video(self.target["video_id"])
        self.refs: list[dict] = []
        if self.pair:
            ids = self.pair["reference_ids"] or []
            by_id = {r["reference_id"]: r for r in _frame(self.m, "references",
                                                          pl.col("reference_id").is_in(ids)).to_dicts()}
            self.refs = [by_id[i] for i in ids if i in by_id]
        self.shard = _one(self.m, "shards", pl.col("key") == key)
        self.meta = self._shard_json()
        dup = _frame(self.m, "duplicates", pl.col("status") == "ok") if table_path(self.m, "duplicates").exists() \
            else None
        self.copies = dup if dup is not None else pl.DataFrame()
        self.clips: dict[str, str] = dict(dup.select("video_id", "group_id").iter_rows()) if dup is not None else {}

    def _clip(self, video_id: str) -> str:
        return self.clips.get(video_id, video_id)

    def _video(self, video_id: str) -> dict | None:
        df = _frame(self.m, "videos", (pl.col("video_id") == video_id) & (pl.col("status") == "ok"))
        return df.row(0, named=True) if df.height else None

    def _rel(self, video_id: str) -> str:
        if video_id not in self.videos_seen:
            v = self._video(video_id)
            self.videos_seen[video_id] = v or {"rel_path": video_id}
        return self.videos_seen[video_id]["rel_path"]

    def _shard_json(self) -> dict | None:
        s = self.shard
        if not s or s["status"] != "ok":
            return None
        return sample_json(self.recipe.shards_dir / s["shard"], s["offset"], s["nbytes"], self.key)

    def write(self) -> str:
        self._sample()
        self._source()
        self._window()
        self._turns()
        self._voice_and_identity()
        if self.pair:
            self._references()
            self._split()
        self._scores()
        if self.pair:
            self._lineage()
        return self.page.text()

    # ---------------------------------------------------------------------------------------- sections

    def _sample(self) -> None:
        p, t, page = self.pair, self.target, self.page
        page.section("Sample", self.key)
        if p is None:
            page.kv("sample", "none: this target has no sample")
            page.kv("target status", f"{t['status']} (skipped by {t['skipped_by'] or '-'}): "
                    f"{_reason(t['error'], self.video['rel_path'] if self.video else None)}")
            page.kv("identity", t["identity_id"] or "-")
            return
        page.kv("target", p["target_id"])
        page.kv("identity", p["identity_id"])
        page.kv("split", p["split"])
        page.kv("status", p["status"] if p["status"] == "ok" else f"{p['status']}: {_reason(p['error'])}")
        s = self.shard
        if s is None:
            page.kv("shard", "not written (no row in the shards table)")
        elif s["status"] != "ok":
            page.kv("shard", f"{s['status']}: {_reason(s['error'])}")
        else:
            page.kv("shard", f"shards/{s['shard']} at byte {s['offset']} ({s['nbytes']:,} bytes)")
            page.kv("members", ", ".join(n.removeprefix(self.key) for n in s["members"]))

    def _source(self) -> None:
        v, t, page = self.video, self.target, self.page
        page.section("Source video")
        if v is None:
            page.kv("video", f"{t['video_id']} (no ok row in the videos table)")
            return
        page.kv("path", v["path"])
        page.kv("relative path", v["rel_path"])
        page.kv("video_id", v["video_id"])
        page.kv("fingerprint", f"{v['fingerprint']} (sha256 of the size and sampled content)")
        page.kv("size", f"{v['size_bytes']:,} bytes")
        page.kv("duration", f"{_s(v['duration_s'])} (both streams)")
        page.kv("video", f"{v['width']}x{v['height']} displayed, {_n(v['fps'])} fps"
                f"{' (variable frame rate)' if v['variable_frame_rate'] else ''}, {v['num_frames']} frames, "
                f"{v['video_codec']}, rotation {v['rotation']}, sample aspect {_n(v['sample_aspect'])}")
        page.kv("audio", f"{v['audio_codec']}, {v['sample_rate']} Hz, {v['channels']} channel(s)")
        if v["label"] or v["source"]:
            page.kv("label / source", f"{v['label'] or '-'} / {v['source'] or '-'}")
        group = self.clips.get(v["video_id"])
        if group is None:
            page.kv("copies", "none found" if self.recipe.duplicates.detect
                    else "not looked for (duplicates.detect off)")
        else:
            members = self.copies.filter(pl.col("group_id") == group).sort("video_id")
            page.kv("copies", f"duplicate group {group} of {members.height} videos (perceptual fingerprints): "
                    + "; ".join(f"{r['rel_path']}{' (best copy)' if r['representative'] else ''}, agreement "
                                f"{_n(r['score'], 2)}, offset {_n(r['offset_s'], 2)} s"
                                for r in members.iter_rows(named=True)))
        scenes = _one(self.m, "scenes", pl.col("video_id") == v["video_id"])
        if scenes is None or scenes["status"] != "ok":
            page.kv("scene cuts", "unknown (no ok scenes row)")
            return
        cuts = scenes["cut_s"] or []
        if t["start_s"] is None:
            page.kv("scene cuts", f"{scenes['num_shots']} shot(s); cuts at "
                    + (", ".join(_s(c) for c in cuts) or "none"))
            return
        a, b = t["start_s"], t["start_s"] + (TARGET_FRAMES - 1) / TARGET_FPS
        before = [c for c in cuts if c <= a]
        after = [c for c in cuts if c > a]
        shot = len(before) + 1
        page.kv("scene cuts", f"{scenes['num_shots']} shot(s) (scenes.threshold {self.recipe.scenes.threshold:g}"
                f"{'' if self.recipe.scenes.detect else ', detection off'})")
        page.kv("around the window", f"previous cut {_s(before[-1]) if before else 'none (video start)'}; "
                f"window {_span(a, b)} (first to last frame), in shot {shot}; next cut "
                f"{_s(after[0]) if after else 'none (video end)'}")
        inside = not after or after[0] > b
        page.check("target", "cuts inside the window", 0 if inside else "1+", "==", 0, inside, "scenes")

    def _window(self) -> None:
        t, page, cfg = self.target, self.page, self.recipe.targets
        page.section("Why this window")
        if t["start_frame"] is None:
            page.line(f"no window: {_reason(t['error'], self.video['rel_path'] if self.video else None)}")
            self._other_windows()
            return
        page.kv("frames", f"{t['start_frame']}-{t['start_frame'] + t['num_frames'] - 1} on the 25 fps grid "
                f"({_span(t['start_s'], t['start_s'] + t['duration_s'])})")
        page.kv("speaker", f"{t['voice_id']} -> identity {t['identity_id']}")
        crop = f"{t['crop_mode']} crop x {t['crop_x']}, y {t['crop_y']}, {t['crop_w']}x{t['crop_h']} source pixels"
        if any(t["crop_pad"] or []):
            crop += f", padded {t['crop_pad']} (left, top, right, bottom; targets.face.pad {cfg.face.pad})"
        page.kv("crop", crop + f" -> {cfg.size}x{cfg.size}")
        if t["face_ratio"] is not None:
            page.kv("face (median box)", f"x {_n(t['face_x'], 1)}, y {_n(t['face_y'], 1)}, "
                    f"{_n(t['face_w'], 1)}x{_n(t['face_h'], 1)}, {len(t['face_track'] or [])} tracked frames "
                    f"(targets.face.detector {cfg.face.detector})")
        if t["sync_score"] is not None:
            page.kv("sync details", f"offset {t['sync_offset']:+d} frames, confidence {_n(t['sync_confidence'])}, "
                    f"mouth activity {_n(t['mouth_activity'])}, audio shifted {_s(t['audio_shift_s'])}")
        elif cfg.face.required:
            page.kv("active speaker", "not scored (targets.active_speaker.check off, or skipped before)")
        page.line("gates, in the order the window met them (`gates`):")
        backend = f" ({cfg.active_speaker.backend})"
        for record in t.get("gates") or []:
            page.gate("target", record, backend if record["name"] == "active_speaker" else "")
        if t["status"] != "ok":
            page.kv("verdict", f"{t['status']} by {t['skipped_by'] or '-'}: "
                    f"{_reason(t['error'], self.video['rel_path'] if self.video else None)}")
        self._other_windows()

    def _other_windows(self) -> None:
        t, page, cfg = self.target, self.page, self.recipe.targets
        rows = _frame(self.m, "targets", (pl.col("video_id") == t["video_id"]) & (pl.col("target_id") != t["target_id"])
                      ).sort("start_frame", nulls_last=True).to_dicts()
        tries = window_tries(self.recipe)
        page.line(f"windows are stepped every {cfg.stride_frames} frames, ranked by speech ratio, and tried in that "
                  f"order (at most {tries}) until {cfg.max_per_video} pass (targets.max_per_video)")
        if not rows:
            page.line("other windows of this video: none")
            return
        page.line(f"other windows of this video ({len(rows)}):")
        rel = self.video["rel_path"] if self.video else None
        page.table(["target", "start", "speech", "status", "why"],
                   [[r["target_id"], _s(r["start_s"]), _n(r["speech_ratio"]),
                     r["status"] + (f" ({r['skipped_by']})" if r["skipped_by"] else ""), _reason(r["error"], rel)]
                    for r in rows])

    def _turns(self) -> None:
        t, page = self.target, self.page
        page.section("Speech turns")
        windows = []
        if t["start_s"] is not None:
            windows.append(("target window", t["video_id"], t["voice_id"], t["start_s"], t["duration_s"]))
        for i, r in enumerate(self.refs):
            windows.append((f"reference {i}", r["video_id"], r["voice_id"], r["start_s"], r["duration_s"]))
        if not windows:
            page.line("no window")
        for label, video_id, voice_id, start, length in windows:
            end = start + length
            turns = _frame(self.m, "turns", (pl.col("video_id") == video_id) & (pl.col("status") == "ok")
                           & (pl.col("end_s") > start) & (pl.col("start_s") < end)).sort("start_s")
            speaker = voice_id.rsplit("-", 1)[-1] if voice_id else None
            page.line(f"{label}: {_span(start, end)} of {self._rel(video_id)} "
                      f"(speaker {speaker}; diarize.backend {self.recipe.diarize.backend})")
            page.table(["speaker", "start", "end", "in window", "note"],
                       [[r["speaker"], _s(r["start_s"]), _s(r["end_s"]),
                         _s(min(r["end_s"], end) - max(r["start_s"], start)),
                         ", ".join(filter(None, ("this speaker" if r["speaker"] == speaker else "another speaker",
                                                 "overlapped" if r["overlap"] else "")))]
                        for r in turns.iter_rows(named=True)])

    def _voice_and_identity(self) -> None:
        t, page, recipe = self.target, self.page, self.recipe
        page.section("Voice and identity")
        if t["voice_id"] is None:
            page.line("no voice: the video gave no window")
            return
        voice = _one(self.m, "voices", pl.col("voice_id") == t["voice_id"])
        page.kv("voice", f"{t['voice_id']} (embed.backend {recipe.embed.backend})")
        if voice is not None:
            page.check("voice", "clean speech", voice["speech_s"], ">=", recipe.embed.min_speech_s,
                       voice["speech_s"] >= recipe.embed.min_speech_s, "embed.min_speech_s")
            page.kv("embedding quality", f"{_n(voice['quality'])} (mean cosine of its {voice['num_windows']} window "
                    "embeddings to their mean)")
        ident = _one(self.m, "identities", pl.col("voice_id") == t["voice_id"])
        if ident is None:
            page.kv("identity", "none (no identities row for the voice)")
            return
        page.kv("identity", ident["identity_id"])
        page.kv("confidence", f"{_n(ident['confidence'])} (cosine to the identity's centroid; voices are linked above "
                f"identify.similarity_threshold {recipe.identify.similarity_threshold:g})")
        page.kv("label", ident["label"] or "none (clustered by voice alone)")
        page.kv("created in run", ident["created_run"])
        if ident["clustered_alone"] is not None:
            same = "the same" if ident["clustered_alone"] == ident["identity_id"] else "a different"
            page.kv("clustered alone", f"{ident['clustered_alone']} ({same} identity than with labels)")
        else:
            page.kv("clustered alone", "- (recorded only when labels exist)")
        members = _frame(self.m, "identities", (pl.col("identity_id") == ident["identity_id"])
                         & (pl.col("status") == "ok"))
        videos = sorted(set(members.get_column("video_id").to_list()))
        page.kv("voices / videos", f"{members.height} voice(s) in {len(videos)} video(s): "
                + ", ".join(self._rel(v) for v in videos[:12]) + (" ..." if len(videos) > 12 else ""))
        faces = _one(self.m, "identity_faces", pl.col("identity_id") == ident["identity_id"])
        if faces is not None:
            share = self.recipe.targets.face_identity.min_dominant_share
            page.check("identity", "dominant face share", faces["agreement"], ">=", share,
                       faces["agreement"] >= share - 1e-9, "targets.face_identity.min_dominant_share")
            page.kv("faces", f"{faces['agreeing']} of {faces['targets']} described targets in {faces['videos']} "
                    f"video(s) show the dominant face (largest distance kept {_n(faces['max_agreeing_distance'])})")

    def _references(self) -> None:
        p, t, page, recipe = self.pair, self.target, self.page, self.recipe
        cfg, rc = recipe.pairs, recipe.references
        assert p is not None
        page.section("Why these references")
        whose = f"identity {p['identity_id']}" if cfg.match == "identity" else "that value"
        page.line(f"rule: references of {whose} from other clips (a video with its copies)"
                  f"{' and other sources (input.source_regex)' if recipe.input.source_regex else ''}, the best "
                  f"quality band first (bands {cfg.quality_band:g} wide, pairs.quality_band), drawn within a band "
                  f"without replacement with weight quality ** {cfg.quality_weight:g} (pairs.quality_weight), seeded "
                  f"by pairs.seed {cfg.seed}, one per clip first; {cfg.references_per_target} per target "
                  "(pairs.references_per_target), best quality first")
        json_refs = (self.meta or {}).get("references", [])
        for i, r in enumerate(self.refs):
            page.line(f"reference {i}: {r['reference_id']}")
            page.kv("window", f"{_span(r['start_s'], r['start_s'] + r['duration_s'])} of "
                    f"{self._rel(r['video_id'])}", indent=4)
            page.kv("quality", f"{_n(r['quality'])} ("
                    + ("speech ratio x min(SNR, 20 dB) / 20" if r.get("dnsmos_ovrl") is None else
                       f"DNSMOS OVRL {_n(r['dnsmos_ovrl'])}: (OVRL - 1) / (3.3 - 1), at most 1") + ")", indent=4)
            subject = f"reference {i}"
            for record in r.get("gates") or []:
                page.gate(subject, record, indent=4)
            if r["gain_db"] is not None:
                out = json_refs[i] if i < len(json_refs) else {}
                page.kv("gain", f"{_n(r['gain_db'])} dB planned to references.normalize_lufs {rc.normalize_lufs:g}"
                        f"{' (limited by the peak ceiling)' if r['gain_limited'] else ''}; applied "
                        f"{_n(out.get('applied_gain_db'))} dB -> {_n(out.get('output_lufs'))} LUFS, peak "
                        f"{_n(out.get('output_peak_dbfs'))} dBFS in the shard", indent=4)
                applied = out.get("applied_gain_db")
                gain = applied if applied is not None else r["gain_db"]
                page.check(subject, "peak after gain", round(r["peak_dbfs"] + gain, 3), "<=", rc.peak_ceiling_dbfs,
                           r["peak_dbfs"] + gain <= rc.peak_ceiling_dbfs + 1e-3, "references.peak_ceiling_dbfs",
                           indent=4)
            else:
                page.kv("gain", "none (references.normalize_lufs is null)", indent=4)
            page.check(subject, "other clip", self._rel(r["video_id"]), "!=", "the target's or a copy of it",
                       self._clip(r["video_id"]) != self._clip(t["video_id"]), "pairs, duplicates", indent=4)
        if cfg.match == "identity":
            self._candidates()
        else:
            match_section(page, recipe, p, t, self.refs, self._rel)

    def _candidates(self) -> None:

        p, t, page, cfg = self.pair, self.target, self.page, self.recipe.pairs
        assert p is not None
        identity = p["identity_id"]
        cands = _frame(self.m, "references", (pl.col("identity_id") == identity) & (pl.col("status") == "ok")
                       ).sort("reference_id").to_dicts()
        sources = {}
        if self.recipe.input.source_regex:
            vids = list({c["video_id"] for c in cands} | {t["video_id"]})
            sources = dict(_frame(self.m, "videos", pl.col("video_id").is_in(vids) & (pl.col("status") == "ok"))
                           .select("video_id", "source").iter_rows())
        own = sources.get(t["video_id"])
        chosen = set(p["reference_ids"] or [])
        chosen_videos = set(p["reference_video_ids"] or [])
        mine = self._clip(t["video_id"])
        eligible = [c for c in cands if self._clip(c["video_id"]) != mine and (own is None or sources.get(c["video_id"])
                                                                               != own)]
        keyed = {c["reference_id"]: draw_key(t["target_id"], (c["reference_id"], c["video_id"], c["quality"]),
                                             cfg.seed, cfg.quality_weight, cfg.quality_band) for c in eligible}
        ranked = sorted(eligible, key=lambda c: (tuple(-x for x in keyed[c["reference_id"]]), c["reference_id"]))
        rank = {c["reference_id"]: i + 1 for i, c in enumerate(ranked)}
        rows = []
        for c in sorted(cands, key=lambda c: (c["reference_id"] not in chosen, -c["quality"], c["reference_id"])):
            rid = c["reference_id"]
            if rid in chosen:
                why = f"CHOSEN (drawn #{rank.get(rid, '-')} of {len(ranked)})"
            elif c["video_id"] == t["video_id"]:
                why = "same video as the target"
            elif self._clip(c["video_id"]) == mine:
                why = f"a copy of the target's video (duplicate group {mine})"
            elif own is not None and sources.get(c["video_id"]) == own:
                why = f"same source {own!r} as the target"
            else:
                why = f"drawn #{rank[rid]} of {len(ranked)}, after the chosen"
                if c["video_id"] in chosen_videos:
                    why += "; its video already gives a reference"
            rows.append([rid, self._rel(c["video_id"]), _n(c["quality"]), _n(c["lufs"], 1), _n(c["snr_db"], 1),
                         why])
        page.line(f"candidate references of {identity}: {len(cands)} in "
                  f"{len({c['video_id'] for c in cands})} video(s), {len(eligible)} eligible:")
        shown = rows[:25]
        page.table(["reference", "video", "quality", "LUFS", "SNR", "why"], shown)
        if len(rows) > len(shown):
            page.line(f"... and {len(rows) - len(shown)} more", indent=4)
        # The identity's videos that gave no reference, and why.
        videos = _frame(self.m, "identities", (pl.col("identity_id") == identity) & (pl.col("status") == "ok")
                        ).get_column("video_id").unique().to_list()
        per_video = _frame(self.m, "references", pl.col("video_id").is_in(videos)).sort("reference_id")
        lines = []
        for v in sorted(videos, key=self._rel):
            rows_v = per_video.filter(pl.col("video_id") == v)
            if rows_v.height == 0:
                lines.append([self._rel(v), "-", "no references row (no window of an identified speaker)"])
                continue
            first = rows_v.row(0, named=True)
            rej = ", ".join(f"{k} {n}" for k, n in (first["rejected_by"] or {}).items() if n)
            ok = rows_v.filter(pl.col("status") == "ok").filter(pl.col("identity_id") == identity).height
            what = (f"{ok} kept" if ok else _reason(first["error"], self._rel(v)))
            lines.append([self._rel(v), _n(first["candidates"]), f"{what}; rejected: {rej or 'none'}"])
        rc = self.recipe.references
        page.line("reference windows per video of the identity (candidates: stride steps x speakers; rejected: by the "
                  f"first threshold failed; kept: passing windows, non-overlapping, placement {rc.placement}, up to "
                  f"references.max_per_video {rc.max_per_video} per speaker):")
        page.table(["video", "candidates", "outcome"], lines)

    def _split(self) -> None:

        p, page, cfg = self.pair, self.page, self.recipe.pairs.splits
        assert p is not None
        page.section("Split")
        page.kv("split", p["split"])
        pairs = _frame(self.m, "pairs", pl.col("status") == "ok",
                       ["identity_id", "split", "target_video_id", "reference_video_ids"])
        targets = _frame(self.m, "targets", pl.col("status") == "ok", ["identity_id", "video_id"])
        links = _frame(self.m, "identities", pl.col("status") == "ok", ["video_id", "identity_id"]).unique()
        with_targets = set(targets.get_column("identity_id").to_list())
        links = links.filter(pl.col("identity_id").is_in(list(with_targets)))
        group = next((g for g in identity_groups((self._clip(v), i) for v, i in links.sort("video_id", "identity_id")
                                                 .rows()) if p["identity_id"] in g), [p["identity_id"]])
        hours = {i: n * TARGET_FRAMES / TARGET_FPS / 3600 for i, n in targets.group_by("identity_id").len().rows()}
        page.line(f"rule: every identity is held out in exactly one split; identities that share a video form a group "
                  f"placed whole (copies of one clip count as one video);"
                  f" pairs.splits.by {cfg.by} (train {cfg.train:g}, val {cfg.val:g}, test {cfg.test:g}), "
                  f"pairs.seed {self.recipe.pairs.seed}; a group keeps the split it had in the previous build")
        if len(group) > 1:
            shared = links.filter(pl.col("identity_id").is_in(group)).group_by("video_id").len().filter(
                pl.col("len") > 1).get_column("video_id").to_list()
            page.kv("group", f"{', '.join(group)} (sharing {', '.join(self._rel(v) for v in sorted(shared))})")
        else:
            page.kv("group", f"{p['identity_id']} alone (shares no video with another identity)")
        page.kv("group target hours", f"{sum(hours.get(i, 0.0) for i in group):.4f} h")
        per_split = pairs.group_by("split").agg(pl.col("identity_id").n_unique().alias("identities"),
                                                pl.len().alias("samples")).sort("split")
        split_hours: dict[str, float] = {}
        for i, s in pairs.select("identity_id", "split").unique().rows():
            split_hours[s] = split_hours.get(s, 0.0) + hours.get(i, 0.0)
        page.line("the build's splits:")
        page.table(["split", "identities", "samples", "target hours"],
                   [[s, n, k, f"{split_hours.get(s, 0.0):.4f}"] for s, n, k in per_split.rows()])
        mine = {self._clip(v) for v in (p["target_video_id"], *(p["reference_video_ids"] or []))}
        elsewhere = pairs.filter(pl.col("split") != p["split"]).explode("reference_video_ids")
        leaked = sorted(mine & {self._clip(v) for v in (elsewhere.get_column("target_video_id").to_list()
                                                       + elsewhere.get_column("reference_video_ids").drop_nulls()
                                                       .to_list())})
        page.check("split", "its clips (videos, copies) in other splits", len(leaked), "==", 0, not leaked, "verify")
        other = pairs.filter((pl.col("identity_id") == p["identity_id"]) & (pl.col("split") != p["split"])).height
        page.check("split", "its identity in other splits", other, "==", 0, other == 0, "verify")

    def _scores(self) -> None:
        page = self.page
        checks = list(page.checks)
        page.section("Scores against thresholds")
        if not checks:
            page.line("none recorded")
            return
        page.table(["of", "score", "value", "threshold", "result"],
                   [[s, w, v, t, "pass" if ok else "FAIL"] for s, w, v, t, ok in checks], indent=2)
        failed = sum(not c[4] for c in checks)
        page.line(f"{len(checks) - failed} of {len(checks)} pass" + (f"; {failed} FAIL" if failed else ""))

    def _lineage(self) -> None:

        p, page = self.pair, self.page
        assert p is not None
        page.section("Lineage")
        version = p["toolkit_version"]
        page.kv("toolkit version", f"ltxa_data {version}" + ("" if version == __version__
                                                             else f" (installed now: {__version__})"))
        now = recipe_hash(self.recipe)
        page.kv("recipe hash", f"{p['recipe_hash']} (" + ("the recipe's now" if now == p["recipe_hash"]
                                                          else f"the recipe has changed since: it hashes to {now}")
                + ")")
        page.line("source files:")
        files = [("target", p["target_video_id"], p["target_path"], p["target_fingerprint"])]
        files += [(f"reference {i}", v, path, fp) for i, (v, path, fp) in enumerate(zip(
            p["reference_video_ids"] or [], p["reference_paths"] or [], p["reference_fingerprints"] or [],
            strict=True))]
        rows = []
        for what, video_id, path, fp in files:
            v = self._video(video_id)
            agrees = "matches the videos table" if v is not None and v["fingerprint"] == fp else "DIFFERS from videos"
            rows.append([what, path, fp, agrees])
        page.table(["of", "path", "fingerprint (sha256)", ""], rows)
        page.line("models:")
        page.table(["role", "backend", "name", "package", "sha256"],
                   [[e["role"], e["backend"], e["name"], f"{e['package']} {e['version'] or '?'}",
                     e["sha256"] or "- (no weights file)"] for e in p["models"] or []])
        if self.meta is None:
            page.kv("shard json", "not read (no ok shard row, or the tar is missing)")
            return
        recorded = self.meta.get("lineage")

        if recorded is None:
            page.kv("shard json", f"{self.key}.json has no lineage (written by an older version)")
        elif recorded == sample_lineage(p):
            page.kv("shard json", f"{self.key}.json carries the same lineage")
        else:
            page.kv("shard json", f"{self.key}.json's lineage DIFFERS from the pairs row (shards not rebuilt since?)")
        latents = self.meta.get("latents")
        if latents:
            page.kv("latents", f"checkpoint {latents.get('checkpoint')} sha256 {latents.get('checkpoint_sha256')}, "
                    f"ltx-core {latents.get('ltx_core_version')}, video {latents.get('video_dtype')} computed in "
                    f"{latents.get('video_compute_dtype')} on {latents.get('device')}")
