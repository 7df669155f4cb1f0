"""Scoring a build against ground truth (the generated corpus writes it beside the clips)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..analysis.labels import main_speaker_labels, video_identities_from_csv
from ..analysis.windows import covered
from ..recipe import TARGET_FPS, TARGET_FRAMES, Recipe
from ..storage import read_frame


@dataclass(frozen=True)
class IdentityScore:
    voices: int
    true_identities: int
    found_identities: int
    purity: float
    inverse_purity: float
    ari: float
    split_identities: int
    """True identities spread over more than one found identity."""
    merged_identities: int
    """Found identities holding more than one true identity."""


def true_speaker_of_voices(turns: pl.DataFrame, videos: pl.DataFrame, ground_truth: dict) -> dict[str, str]:
    """voice_id -> the ground-truth speaker whose speech its turns overlap most."""
    gt = {c["path"]: c for c in ground_truth["clips"]}
    rel = dict(zip(videos["video_id"], videos["rel_path"], strict=True))
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in turns.filter(pl.col("status") == "ok").iter_rows(named=True):
        spans[f"{t['video_id']}-{t['speaker']}"].append((t["start_s"], t["end_s"]))
    out = {}
    for voice_id, sp in spans.items():
        clip = gt.get(rel.get(voice_id.rsplit("-", 1)[0], ""))
        if clip is None:
            continue
        overlap: Counter[str] = Counter()
        for seg in clip["segments"]:
            overlap[seg["speaker"]] += sum(covered([(seg["start"], seg["end"])], s, e) for s, e in sp)
        if overlap and overlap.most_common(1)[0][1] > 0:
            out[voice_id] = overlap.most_common(1)[0][0]
    return out


def score_identities(identities: pl.DataFrame, truth: dict[str, str]) -> IdentityScore:
    """Purity, inverse purity and adjusted Rand index of found identities against true speakers."""
    from sklearn.metrics import adjusted_rand_score  # scikit-learn loads in seconds: only when scoring
    ok = identities.filter(pl.col("status") == "ok")
    pairs = [(truth[v], i) for v, i in zip(ok["voice_id"], ok["identity_id"], strict=True) if v in truth]
    if not pairs:
        return IdentityScore(0, 0, 0, 0.0, 0.0, 0.0, 0, 0)
    true, found = zip(*pairs, strict=True)
    by_found: dict[str, Counter[str]] = defaultdict(Counter)
    by_true: dict[str, Counter[str]] = defaultdict(Counter)
    for t, f in pairs:
        by_found[f][t] += 1
        by_true[t][f] += 1
    n = len(pairs)
    return IdentityScore(
        voices=n,
        true_identities=len(by_true),
        found_identities=len(by_found),
        purity=sum(c.most_common(1)[0][1] for c in by_found.values()) / n,
        inverse_purity=sum(c.most_common(1)[0][1] for c in by_true.values()) / n,
        ari=float(adjusted_rand_score(true, found)),
        split_identities=sum(1 for c in by_true.values() if len(c) > 1),
        merged_identities=sum(1 for c in by_found.values() if len(c) > 1),
    )


def truth_from_csv(path: Path, voices: pl.DataFrame, videos: pl.DataFrame) -> dict[str, str]:
    """voice_id -> identity from a CSV (`video`, `identity`) naming each video's main speaker, by
    the rule prior labels follow (the voice with the most clean speech)."""

    wanted = video_identities_from_csv(path, videos)
    ok = voices.filter(pl.col("status") == "ok")
    ok = ok.with_columns(pl.Series("video_label", [wanted.get(v) for v in ok["video_id"]], dtype=pl.String))
    return {v: lab for v, lab in zip(ok["voice_id"], main_speaker_labels(ok), strict=True) if lab}


def default_truth(recipe: Recipe) -> Path:
    """Where a generated corpus keeps its ground truth: `ground_truth.json` in the first input folder."""
    return recipe.resolve(recipe.input.paths[0]) / "ground_truth.json"


def load_truth(manifests: Path, path: Path) -> tuple[dict[str, str], dict | None]:
    """voice_id -> true identity from a generated corpus's `ground_truth.json` or a CSV (`video`, `identity`),
    and the corpus's ground truth itself (None for a CSV, which says nothing about windows)."""
    import json


    if not path.exists():
        raise FileNotFoundError(f"{path}: no ground truth (pass --truth FILE)")
    videos = read_frame(manifests, "videos", ok_only=True)
    if path.suffix == ".csv":
        return truth_from_csv(path, read_frame(manifests, "voices"), videos), None
    gt = json.loads(path.read_text())
    return true_speaker_of_voices(read_frame(manifests, "turns"), videos, gt), gt


def label_agreement(identities: pl.DataFrame) -> list[str]:
    """How prior labels compare with what clustering alone would have done."""
    lab = identities.filter(pl.col("label").is_not_null() & pl.col("clustered_alone").is_not_null())
    if lab.height == 0:
        return []
    split = lab.group_by("label").agg(pl.col("clustered_alone").n_unique().alias("n")).filter(pl.col("n") > 1)
    merged = lab.group_by("clustered_alone").agg(pl.col("label").n_unique().alias("n")).filter(pl.col("n") > 1)
    return [f"labels: {lab['label'].n_unique()} labels on {lab.height} voices; clustering alone would split "
            f"{split.height} of them and merge {merged.height} group(s) of different labels"]


def face_agreement(targets: pl.DataFrame) -> list[str]:
    """Voice-face agreement: per voice identity, how many of its described targets show its dominant face."""
    described = targets.filter(pl.col("face_agrees").is_not_null())
    if described.height == 0:
        return []
    per = described.group_by("identity_id").agg(pl.len().alias("n"), pl.col("face_agrees").sum().alias("agree"))
    full = per.filter(pl.col("agree") == pl.col("n")).height
    lines = [f"voice-face agreement: {int(per['agree'].sum())} of {described.height} described targets show their "
             f"identity's dominant face; {full} of {per.height} identities agree fully"]
    for r in per.filter(pl.col("agree") < pl.col("n")).sort("identity_id").iter_rows(named=True):
        lines.append(f"  {r['identity_id']}: {r['agree']} of {r['n']} targets show the dominant face")
    return lines


Segments = list[tuple[str, float, float]]
"""(speaker, start, end) in seconds."""


@dataclass(frozen=True)
class DiarizationScore:
    """Diarization error rate of one recording (or all together, uri "TOTAL"), in seconds and as a rate."""

    uri: str
    scored_s: float
    false_alarm_s: float
    missed_s: float
    confusion_s: float

    @property
    def der(self) -> float:
        return (self.false_alarm_s + self.missed_s + self.confusion_s) / self.scored_s if self.scored_s else 0.0


def read_rttm(path: Path) -> dict[str, Segments]:
    """uri -> speaker segments, from the SPEAKER lines of an RTTM file."""
    out: dict[str, Segments] = defaultdict(list)
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        f = line.split()
        if not f or f[0] != "SPEAKER":
            continue
        try:
            if len(f) < 8:
                raise ValueError(f"a SPEAKER line has at least 8 fields, got {len(f)}")
            start, dur = float(f[3]), float(f[4])
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not an RTTM SPEAKER line ({e}): {line.strip()!r}") from None
        out[f[1]].append((f[7], start, start + dur))
    return dict(out)


def rttm_from_ground_truth(ground_truth: dict) -> dict[str, Segments]:
    """A generated corpus's speech segments, keyed by clip path (relative to the corpus) without extension."""
    return {str(Path(c["path"]).with_suffix("")): [(s["speaker"], s["start"], s["end"]) for s in c["segments"]]
            for c in ground_truth["clips"]}


def match_recordings(videos: pl.DataFrame, uris: set[str], roots: tuple[Path, ...] = ()) -> dict[str, str]:
    """video_id -> the reference uri naming it: the video's path without extension (absolute,
    relative to its input folder, or relative to one of `roots`), else its file name without
    extension when no other video has that name. Two videos matching one uri is an error."""
    stems = Counter(Path(p).stem for p in videos["path"].to_list())
    out: dict[str, str] = {}
    owner: dict[str, str] = {}
    for v in videos.iter_rows(named=True):
        path = Path(v["path"]).with_suffix("")
        names = [str(path), str(Path(v["rel_path"]).with_suffix(""))]
        names += [str(path.relative_to(r)) for r in roots if path.is_relative_to(r)]
        if stems[path.name] == 1:
            names.append(path.name)
        uri = next((n for n in names if n in uris), None)
        if uri is None:
            continue
        if uri in owner:
            raise ValueError(f"reference uri {uri!r} matches two videos: {owner[uri]} and {v['path']}; "
                             "give the RTTM uris as paths relative to the input folder")
        owner[uri], out[v["video_id"]] = v["path"], uri
    return out


def score_diarization(reference: dict[str, Segments], hypothesis: dict[str, Segments],
                      extent: dict[str, float], collar: float = 0.0, skip_overlap: bool = False
                      ) -> list[DiarizationScore]:
    """DER per recording and in total with pyannote.metrics, over [0, extent[uri]) of each uri in
    `reference`. A uri missing from `hypothesis` is scored as all speech missed."""
    try:
        from pyannote.core import Annotation, Segment, Timeline
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError as e:
        raise ImportError(f"scoring diarization needs pyannote.metrics ({e}); install the speech extras: "
                          "pip install -e '.[speech]' -c constraints.txt") from e

    def annotation(uri: str, segments: Segments) -> Annotation:
        ann = Annotation(uri=uri)
        for i, (spk, s, e) in enumerate(segments):
            if e > s:
                ann[Segment(s, e), i] = spk
        return ann

    if not reference:
        raise ValueError("no recording to score: no reference uri matches a recording")
    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    scores = []
    for uri in sorted(reference):
        uem = Timeline([Segment(0.0, extent[uri])], uri=uri)
        d = metric(annotation(uri, reference[uri]), annotation(uri, hypothesis.get(uri, [])), uem=uem, detailed=True)
        scores.append(DiarizationScore(uri, d["total"], d["false alarm"], d["missed detection"], d["confusion"]))
    total = DiarizationScore("TOTAL", *(sum(getattr(s, f) for s in scores)
                                        for f in ("scored_s", "false_alarm_s", "missed_s", "confusion_s")))
    return [*scores, total]


@dataclass(frozen=True)
class GateScore:
    """One face gate against ground truth: how many windows it looked at of each kind, and what it kept."""

    gate: str
    positives: int
    """Windows that should pass (the face speaks with the voice; for face_identity: and is its owner)."""
    positives_kept: int
    negatives: int
    """Windows that should not."""
    negatives_removed: int

    @property
    def recall(self) -> float:
        """Share of the windows that should pass that it kept."""
        return self.positives_kept / self.positives if self.positives else float("nan")

    @property
    def removal(self) -> float:
        """Share of the windows that should not pass that it removed."""
        return self.negatives_removed / self.negatives if self.negatives else float("nan")

    @property
    def precision(self) -> float:
        """Share of the windows it removed that should not pass."""
        removed = self.negatives_removed + self.positives - self.positives_kept
        return self.negatives_removed / removed if removed else float("nan")

    def line(self) -> str:
        return (f"{self.gate}: kept {self.positives_kept}/{self.positives} windows where the face speaks with its "
                f"voice{' and is its owner' if self.gate == 'face_identity' else ''}, removed "
                f"{self.negatives_removed}/{self.negatives} where it does not (precision of removals "
                f"{self.precision:.2f})")


def window_truth(clip: dict, start_s: float, duration_s: float) -> tuple[str | None, str, str]:
    """(the true speaker of a window, whose face is on screen, what moves that face's mouth) from a
    generated clip's ground truth: the speaker with the most speech in the window, the shot at its middle."""
    talk: Counter[str] = Counter()
    for seg in clip["segments"]:
        talk[seg["speaker"]] += covered([(seg["start"], seg["end"])], start_s, start_s + duration_s)
    speaker = talk.most_common(1)[0][0] if talk and talk.most_common(1)[0][1] > 0 else None
    middle = start_s + duration_s / 2
    shot = [s for s in clip["shots"] if s["start"] <= middle + 1e-9][-1]
    return speaker, shot["speaker"], shot.get("mouth", "own")


def score_face_gates(targets: pl.DataFrame, videos: pl.DataFrame, ground_truth: dict) -> list[GateScore]:
    """The active-speaker and face-identity gates against a generated corpus's ground truth: every window
    a gate looked at is a positive when it should pass (the shown mouth moves with the heard voice; for the
    face-identity gate also: the shown face is the speaker's own) and a negative otherwise."""
    gt = {c["path"]: c for c in ground_truth["clips"]}
    rel = dict(zip(videos["video_id"], videos["rel_path"], strict=True))
    counts = {g: [0, 0, 0, 0] for g in ("active_speaker", "face_identity")}
    for t in targets.filter(pl.col("sync_score").is_not_null() | pl.col("face_agrees").is_not_null()).iter_rows(
            named=True):
        clip = gt.get(rel.get(t["video_id"], ""))
        if clip is None:
            continue
        speaker, face, mouth = window_truth(clip, t["start_s"], t["duration_s"])
        moves_with_voice = (mouth == "own" and face == speaker) or mouth == "voice"
        looked = [("active_speaker", t["sync_score"] is not None, moves_with_voice)]
        looked.append(("face_identity", t["face_agrees"] is not None, moves_with_voice and face == speaker))
        for gate, seen, positive in looked:
            if not seen:
                continue
            kept = t["skipped_by"] != gate
            c = counts[gate]
            if positive:
                c[0] += 1
                c[1] += kept
            else:
                c[2] += 1
                c[3] += not kept
    return [GateScore(g, *c) for g, c in counts.items()]


QUALITY_GATES: dict[str, tuple[str, ...]] = {
    "reverb": ("speech_ovrl", "speech_sig", "speech_bak", "speech_povrl"),
    "music": ("speech_ovrl", "speech_sig", "speech_bak", "speech_povrl"),
    "subtitle": ("burned_text",),
    "blur": ("sharpness",),
    "tiny": ("upscale",),
    "turned": ("yaw", "pitch", "roll"),
}
"""The gates that should remove the targets of each spoiled kind of clip (`corpus.speech.QUALITY_KINDS`)."""
_CLEAN_KINDS = ("single", "cut", "dialog")


def score_quality_gates(targets: pl.DataFrame, references: pl.DataFrame, videos: pl.DataFrame,
                        ground_truth: dict) -> list[str]:
    """The material-quality gates against a generated corpus: per spoiled kind of clip, its target windows kept
    and removed (by which gate, and whether it is the gate meant to), its references kept; for the clean clips,
    the windows the quality gates removed (false rejections)."""
    kind_of = {c["path"]: c["kind"] for c in ground_truth["clips"] if not c.get("copy_of")}
    rel = dict(zip(videos["video_id"], videos["rel_path"], strict=True))
    quality = {g for gates in QUALITY_GATES.values() for g in gates}

    def kind(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(kind=pl.col("video_id").replace_strict(rel, default="").replace_strict(
            kind_of, default=None))

    windows = kind(targets.filter(~pl.col("target_id").str.ends_with("-none")))
    refs = kind(references.filter(pl.col("status") == "ok"))
    lines = []
    for k, meant in QUALITY_GATES.items():
        w = windows.filter(pl.col("kind") == k)
        if not w.height:
            continue
        by = w.filter(pl.col("skipped_by").is_not_null())["skipped_by"].value_counts(sort=True).rows()
        right = sum(n for g, n in by if g in meant)
        lines.append(f"{k} clips: {w.filter(pl.col('status') == 'ok').height}/{w.height} windows kept, {right} "
                     f"removed by {'/'.join(meant)}" + (f" (all removals: {', '.join(f'{g} {n}' for g, n in by)})"
                                                        if by else "")
                     + f"; {refs.filter(pl.col('kind') == k).height} reference(s) kept")
    clean = windows.filter(pl.col("kind").is_in(_CLEAN_KINDS))
    wrong = clean.filter(pl.col("skipped_by").is_in(sorted(quality)))["skipped_by"].value_counts(sort=True).rows()
    if lines:
        lines.append(f"clean clips: {clean.filter(pl.col('status') == 'ok').height}/{clean.height} windows kept, "
                     f"{sum(n for _, n in wrong)} removed by a quality gate"
                     + (f" ({', '.join(f'{g} {n}' for g, n in wrong)})" if wrong else "")
                     + f"; {refs.filter(pl.col('kind').is_in(_CLEAN_KINDS)).height} reference(s) kept")
    return [f"vs ground truth, material quality: {line}" for line in lines]


def score_attribute_pairs(recipe: Recipe, ground_truth: dict) -> list[str]:
    """With `pairs.match` an attribute whose true value per speaker the ground truth holds (`<attribute>s`, e.g.
    `accents`): pairs per value and split, how many references carry their target's true value, the share from
    another true speaker than the target's, and the swap-eval cases by kind."""
    name = recipe.pairs.match
    truth = ground_truth.get(f"{name}s")
    if name == "identity" or not isinstance(truth, dict):
        return []
    m = recipe.manifests_dir
    clips = {c["path"]: c for c in ground_truth["clips"]}
    rel = dict(read_frame(m, "videos", ok_only=True).select("video_id", "rel_path").iter_rows())
    pairs = read_frame(m, "pairs", ok_only=True)
    refs = {r["reference_id"]: r for r in read_frame(m, "references", ok_only=True).iter_rows(named=True)}
    targets = {t["target_id"]: t for t in read_frame(m, "targets", ok_only=True).iter_rows(named=True)}

    def speaker(video_id: str, start: float, length: float) -> str | None:
        clip = clips.get(rel.get(video_id, ""))
        return window_truth(clip, start, length)[0] if clip else None

    per = pairs.group_by("value", "split").len().sort("value", "split")
    by_value: dict[str, list[str]] = defaultdict(list)
    for r in per.iter_rows(named=True):
        by_value[str(r["value"])].append(f"{r['split']} {r['len']}")
    lines = [f"pairs by {name} and split: " + "; ".join(f"{v}: {', '.join(s)}" for v, s in sorted(by_value.items()))]
    n_refs = same_value = other_speaker = labelled_right = 0
    for p in pairs.iter_rows(named=True):
        t = targets[p["target_id"]]
        who = speaker(t["video_id"], t["start_s"], TARGET_FRAMES / TARGET_FPS)
        labelled_right += truth.get(who) == p["value"]
        for ref_id in p["reference_ids"]:
            r = refs[ref_id]
            ref_who = speaker(r["video_id"], r["start_s"], r["duration_s"])
            n_refs += 1
            same_value += ref_who is not None and truth.get(ref_who) == truth.get(who)
            other_speaker += ref_who is not None and ref_who != who
    lines.append(f"vs ground truth: {labelled_right}/{pairs.height} targets carry their speaker's true {name}; "
                 f"{same_value}/{n_refs} references have their target's true {name}; {other_speaker}/{n_refs} "
                 f"({other_speaker / max(n_refs, 1):.0%}) come from another true speaker than the target's")
    cases = read_frame(m, "swap_eval", ok_only=True)
    kinds = Counter("seed control" if c["kind"] == "seed" else
                    f"swap to another {name}, {'seen' if c['b_in_train'] else 'unseen'} in training"
                    for c in cases.iter_rows(named=True))
    lines.append("swap-eval cases: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return lines
