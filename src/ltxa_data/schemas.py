"""Manifest schemas: the contract between stages. Every table a stage writes is checked here.

Every table carries `status` (ok / skipped / failed) and `error` (the reason, required when the
row is not ok). Downstream stages read only `ok` rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .gates import GATES_TYPE, REFERENCE_GATES

STATUSES = ("ok", "skipped", "failed")


class SchemaError(Exception):
    """A table does not match its schema: a programming fault, so the run stops."""


@dataclass(frozen=True)
class TableSchema:
    """One manifest table: its columns, its key (unique, the sort order) and what a row is."""

    name: str
    row: str
    key: tuple[str, ...]
    fields: tuple[tuple[str, pa.DataType, str], ...]

    @property
    def arrow(self) -> pa.Schema:
        cols = [pa.field(n, t) for n, t, _ in self.fields]
        cols += [pa.field("status", pa.string(), nullable=False), pa.field("error", pa.string())]
        return pa.schema(cols)

    @property
    def columns(self) -> list[str]:
        return self.arrow.names


_S = pa.string()
_F = pa.float64()
_I = pa.int64()
_B = pa.bool_()

VIDEOS = TableSchema(
    "videos", "a source file: probe facts, fingerprint, status (rejects are the rows that are not ok)",
    ("video_id", "path"),
    (
        ("video_id", _S, "content fingerprint id (16 hex); `path-<hash>` for unreadable files"),
        ("path", _S, "absolute path of the file"),
        ("rel_path", _S, "path relative to the input root it was found under"),
        ("size_bytes", _I, "file size"),
        ("fingerprint", _S, "sha256 of size + sampled content"),
        ("label", _S, "identity label from input.label_regex, if any"),
        ("source", _S, "source (channel, show) from input.source_regex, if any"),
        ("duration_s", _F, "usable duration: where both streams have data"),
        ("fps", _F, "source frame rate (mean rate for VFR)"),
        ("num_frames", _I, "video packets counted"),
        ("width", _I, "displayed frame width (upright, square pixels)"),
        ("height", _I, "displayed frame height (upright, square pixels)"),
        ("rotation", _I, "clockwise turn in degrees (0, 90, 180, 270) that shows the stored frames upright "
         "(display matrix); width and height are after it"),
        ("sample_aspect", _F, "stored pixel width / height (SAR, 1.0 = square); width and height are stretched to "
         "square pixels"),
        ("video_codec", _S, "video codec"),
        ("variable_frame_rate", _B, "frame intervals vary"),
        ("audio_codec", _S, "audio codec"),
        ("sample_rate", _I, "source audio sample rate"),
        ("channels", _I, "source audio channels"),
    ),
)

SCENES = TableSchema(
    "scenes", "a video's hard cuts (PySceneDetect); no target window crosses one",
    ("video_id",),
    (
        ("video_id", _S, "the video"),
        ("cut_s", pa.list_(_F), "instants where a new shot starts, in seconds"),
        ("num_shots", _I, "shots in the video (cuts + 1)"),
        ("picture_file", _S, "the Arrow IPC file (relative to output.dir) where the same decode left the picture "
         "half of the video's fingerprint, for the fingerprints stage; null: not computed"),
        ("picture_row", _I, "its row in that file"),
    ),
)

TURNS = TableSchema(
    "turns", "a speech turn: video, local speaker, start, end, overlap flag",
    ("turn_id",),
    (
        ("turn_id", _S, "{video_id}-{speaker}-{start_ms:09d}"),
        ("video_id", _S, "source video"),
        ("speaker", _S, "local speaker label within the video (S0, S1, ...)"),
        ("start_s", _F, "turn start"),
        ("end_s", _F, "turn end"),
        ("overlap", _B, "another speaker talks at the same time"),
    ),
)

VOICES = TableSchema(
    "voices", "a (video, local speaker): embedding, speech seconds, quality",
    ("voice_id",),
    (
        ("voice_id", _S, "{video_id}-{speaker}"),
        ("video_id", _S, "source video"),
        ("speaker", _S, "local speaker label"),
        ("embedding", pa.list_(pa.float32()), "L2-normalised speaker embedding"),
        ("speech_s", _F, "clean single-speaker speech seconds available"),
        ("num_windows", _I, "windows averaged into the embedding"),
        ("quality", _F, "mean cosine of window embeddings to their mean (consistency)"),
    ),
)

IDENTITIES = TableSchema(
    "identities", "a voice -> identity id, confidence",
    ("voice_id",),
    (
        ("voice_id", _S, "voice"),
        ("video_id", _S, "source video"),
        ("speaker", _S, "local speaker label"),
        ("identity_id", _S, "identity (label-<label> for labelled, id-<hash> for clustered); kept across "
         "incremental runs"),
        ("confidence", _F, "cosine of the voice to its identity centroid"),
        ("label", _S, "prior label (must-link) of this voice, if any"),
        ("created_run", _I, "the identify run (1, 2, ...) that created the identity"),
        ("clustered_alone", _S, "the cluster clustering alone (no labels) would give, when labels exist"),
    ),
)

def _dnsmos_columns(what: str) -> tuple[tuple[str, pa.DataType, str], ...]:
    return tuple((f"dnsmos_{m}", _F, f"DNSMOS {label} of {what}, 1-5 (null when the backend is `snr`)")
                 for m, label in (("sig", "P.835 SIG (the speech signal)"), ("bak", "P.835 BAK (the background)"),
                                  ("ovrl", "P.835 OVRL (overall)"), ("povrl", "personalized OVRL (also drops "
                                                                              "under another voice)")))


TARGETS = TableSchema(
    "targets", "a 121-frame window: video, identity, start frame, crop box, face track, active-speaker score, "
    "face descriptor",
    ("target_id",),
    (
        ("target_id", _S, "{video_id}-{speaker}-{start_ms:09d}"),
        ("video_id", _S, "source video"),
        ("voice_id", _S, "the speaker talking in the window"),
        ("identity_id", _S, "that speaker's identity"),
        ("start_frame", _I, "first frame on the 25 fps grid"),
        ("start_s", _F, "start_frame / 25"),
        ("num_frames", _I, "121"),
        ("duration_s", _F, "num_frames / 25"),
        ("crop_x", _I, "crop box left, source pixels (negative where a face crop leaves the frame)"),
        ("crop_y", _I, "crop box top, source pixels (negative where a face crop leaves the frame)"),
        ("crop_w", _I, "crop box width, source pixels"),
        ("crop_h", _I, "crop box height, source pixels"),
        ("speech_ratio", _F, "fraction of the window the speaker talks"),
        ("crop_mode", _S, "`center` or `face` (targets.crop)"),
        ("crop_pad", pa.list_(_I), "[left, top, right, bottom]: source pixels of the crop outside the frame, "
         "filled per targets.face.pad (all 0 for center crops)"),
        ("face_ratio", _F, "face-tracked targets: fraction of the sampled frames with exactly one face"),
        ("face_x", _F, "face-tracked targets: median tracked face box left, source pixels"),
        ("face_y", _F, "face-tracked targets: median tracked face box top, source pixels"),
        ("face_w", _F, "face-tracked targets: median tracked face box width, source pixels"),
        ("face_h", _F, "face-tracked targets: median tracked face box height, source pixels"),
        ("face_track", pa.list_(pa.list_(_F)), "face-tracked targets: [frame offset, x, y, w, h] per linked sampled "
         "frame, smoothed, source pixels; the shard's per-frame face boxes interpolate it"),
        ("sync_score", _F, "active-speaker score of the tracked face against the window's speech at the best "
         "offset (targets.active_speaker.backend's scale: mouth_motion, z-score of the lip-envelope correlation "
         "against the same mouth out of line; syncnet, its confidence)"),
        ("sync_offset", _I, "best audio offset in frames (> 0: the sound comes that many frames after the mouth)"),
        ("sync_confidence", _F, "a second figure of the backend (mouth_motion: the lip-envelope correlation at "
         "the best offset; syncnet: see docs)"),
        ("mouth_activity", _F, "how much the mouth moves (mouth_motion: std of the lip opening in eye-corner "
         "distances; 0 for a still mouth)"),
        ("audio_shift_s", _F, "seconds the shard's target audio is shifted to line up with the mouth "
         "(targets.active_speaker.shift_audio; 0 when not shifted)"),
        ("face_descriptor", pa.list_(pa.float32()), "face descriptor (dlib, 128-d) averaged over "
         "targets.face_identity.frames frames of the track"),
        ("face_distance", _F, "descriptor distance to the identity's dominant face"),
        ("face_agrees", _B, "the face is the identity's dominant face (within targets.face_identity.max_distance)"),
        ("upscale", _F, "picture: how much the output enlarges the source around the face (output side over the "
         "crop's side in source pixels; see `analysis/picture.py`)"),
        ("face_sharpness", _F, "picture: sharpness of the face over the window (`analysis/picture.py`)"),
        ("head_yaw", _F, "picture: head turn, degrees (from the 68 landmarks; the window's extreme)"),
        ("head_pitch", _F, "picture: head tilt up or down, degrees"),
        ("head_roll", _F, "picture: in-plane head tilt, degrees"),
        ("text_fraction", _F, "picture: share of the searched frames showing overlay text (subtitles, captions) "
         "inside the crop"),
        *_dnsmos_columns("the target's audio (4.84 s)"),
        ("clip_file", _S, "the Arrow IPC file (relative to output.dir) where the window's own decode left its mp4, "
         "cut and encoded as the shard stage would (`stages/target_clips.py`), for the shard stage; null: none"),
        ("skipped_by", _S, "the check that skipped the row: window (no window where one speaker talks), duplicate (a "
         "copy of a clip whose best copy gives the targets: duplicates.targets one), or the failed gate's name "
         "(`gates`; a sync offset counts under active_speaker, a dominant-face share under face_identity)"),
        ("gates", GATES_TYPE, "every gate the window met, in order: {name, value, threshold, passed} "
         "(`ltxa_data.gates.TARGET_GATES`); in a row a gate skipped, the first record that did not pass is that "
         "gate's"),
    ),
)

IDENTITY_FACES = TableSchema(
    "identity_faces", "a voice identity's dominant face and how many of its targets show it", ("identity_id",),
    (
        ("identity_id", _S, "voice identity"),
        ("targets", _I, "its targets the face-identity check described"),
        ("videos", _I, "videos those targets come from"),
        ("agreeing", _I, "targets showing the dominant face (kept)"),
        ("agreement", _F, "agreeing / targets: voice-face agreement"),
        ("max_agreeing_distance", _F, "largest descriptor distance of a kept target from the dominant face"),
        ("dominant_face", pa.list_(pa.float32()), "mean descriptor of the kept targets' faces"),
    ),
)

MODEL_FIELDS = ("role", "backend", "name", "path", "package", "version", "sha256")
"""A model's lineage (the pairs table's `models`, a sample json's `lineage.models`); see `ltxa_data.lineage`."""

REFERENCE_THRESHOLDS = tuple(REFERENCE_GATES)
"""The recipe's reference thresholds, in the order a candidate window is checked."""

REFERENCES = TableSchema(
    "references", "a 3.5 s voice window: video, identity, start, loudness, quality, planned gain",
    ("reference_id",),
    (
        ("reference_id", _S, "{video_id}-{speaker}-{start_ms:09d}"),
        ("video_id", _S, "source video"),
        ("voice_id", _S, "the speaker talking in the window"),
        ("identity_id", _S, "that speaker's identity"),
        ("start_s", _F, "window start"),
        ("duration_s", _F, "window length (3.5 s)"),
        ("speech_ratio", _F, "fraction of the window the speaker talks"),
        ("lufs", _F, "integrated loudness (ITU-R BS.1770-4, pyloudnorm) of the mono mix of the 16 kHz audio the "
                     "shard carries, before gain (LUFS; a stereo meter reads a dual-mono wav 3 LU louder)"),
        ("peak_dbfs", _F, "sample peak of that audio over both channels, before gain (dBFS; decoders can "
                          "overshoot 0)"),
        ("clipped_fraction", _F, "fraction of its samples (both channels) with abs(x) >= 0.999"),
        ("snr_db", _F, "SNR estimate: the speaker's speech power over the mean power of the quietest 10% of "
                       "20 ms frames (noise floored at -100 dBFS; reads low for speech without pauses)"),
        ("speech_energy_db", _F, "the speaker's speech power averaged over the whole window, pauses and "
                                 "other frames counted as silence (dBFS): what `placement: densest` ranks by"),
        *_dnsmos_columns("the window as the shard carries it (after its gain)"),
        ("quality", _F, "preference score of pairs, 0-1: with DNSMOS, (dnsmos_ovrl - 1) / (FULL_QUALITY_OVRL - 1) "
         "capped at 1; with `snr`, speech_ratio x min(max(snr_db, 0), 20) / 20 (`stages/references.py`)"),
        ("gain_db", _F, "planned gain to references.normalize_lufs under the peak ceiling (null: no "
                        "normalisation)"),
        ("gain_limited", _B, "the peak ceiling bound the gain (the reference ends up quieter than the target "
                             "loudness)"),
        ("candidates", _I, "candidate windows of this video (stride steps x identified speakers), the same "
                           "on every row of the video"),
        ("rejected_by", pa.struct([(n, _I) for n in REFERENCE_THRESHOLDS]),
         "per threshold, how many of the video's candidate windows it rejected (each counted under the first "
         "it fails, in this order); the same on every row of the video"),
        ("gates", GATES_TYPE, "the reference gates the kept window passed: {name, value, threshold, passed} "
         "(`ltxa_data.gates`), measured on the exact audio the shard carries"),
    ),
)

ATTRIBUTES = TableSchema(
    "attributes", "a target or reference window's value of one attribute (`attributes.<name>`), or why it has none",
    ("window", "window_id", "attribute"),
    (
        ("window_id", _S, "the window: a target_id or a reference_id (the two may be equal)"),
        ("attribute", _S, "the attribute's name"),
        ("window", _S, "`target` or `reference`"),
        ("video_id", _S, "the window's video"),
        ("identity_id", _S, "the window's speaker"),
        ("start_s", _F, "the window's start in its video"),
        ("duration_s", _F, "its length"),
        ("value", _S, "its value (null: none, the reason in `error`)"),
        ("confidence", _F, "a classifier's probability of its top value (null for labels)"),
        ("source", _S, "where the value came from: the labels file and its rows (`accent.csv line 7`), "
         "`label_regex`, or the classifier's model"),
    ),
)

PAIRS = TableSchema(
    "pairs", "a sample: target -> reference(s), split",
    ("key",),
    (
        ("key", _S, "sample key (= target_id)"),
        ("target_id", _S, "target window"),
        ("reference_ids", pa.list_(_S), "chosen reference windows, all from other videos"),
        ("identity_id", _S, "identity of the target"),
        ("target_video_id", _S, "video of the target"),
        ("reference_video_ids", pa.list_(_S), "videos of the references"),
        ("match", _S, "what target and references share: `identity`, or an attribute's name (`pairs.match`)"),
        ("value", _S, "with an attribute: the value they share (null with `identity`)"),
        ("reference_identity_ids", pa.list_(_S), "the references' identities, in reference order"),
        ("split", _S, "train / val / test"),
        ("target_path", _S, "lineage: the target's source file (videos.path)"),
        ("target_rel_path", _S, "lineage: that file relative to its input root (videos.rel_path)"),
        ("target_fingerprint", _S, "lineage: its content fingerprint (videos.fingerprint; video_id is its first "
         "16 hex)"),
        ("reference_paths", pa.list_(_S), "lineage: the references' source files, in reference order"),
        ("reference_rel_paths", pa.list_(_S), "lineage: those files relative to their input roots"),
        ("reference_fingerprints", pa.list_(_S), "lineage: their content fingerprints"),
        ("models", pa.list_(pa.struct([(f, _S) for f in MODEL_FIELDS])),
         "lineage: every model the build used (`lineage.model_lineage`): role, backend, name, path, package, "
         "version, sha256 of the weight file (null for a model without weights, or a hub model not in the local "
         "cache); the same on every row"),
        ("toolkit_version", _S, "lineage: ltxa_data version of the build"),
        ("recipe_hash", _S, "lineage: hash of the recipe sections that decide the samples (`lineage.recipe_hash`: "
         "those of the shard stage and every stage before it, scheduling-only fields left out)"),
    ),
)

SWAP_EVAL = TableSchema(
    "swap_eval", "an evaluation case: a held-out target generated twice, fixed caption, only the reference "
    "(kind swap) or only the seed (kind seed) changes", ("case_id",),
    (
        ("case_id", _S, "`{target_id}-{kind}-{heldout|train}`"),
        ("kind", _S, "`swap`: reference A vs B at one seed; `seed`: reference A at two seeds (control)"),
        ("split", _S, "the target's split (val or test)"),
        ("target_id", _S, "the held-out target"),
        ("identity_id", _S, "the target's identity (reference A's)"),
        ("seed_a", _I, "generation seed of run A"),
        ("seed_b", _I, "generation seed of run B (equal to seed_a for swap cases)"),
        ("reference_a_id", _S, "the target's own reference, as paired"),
        ("reference_b_id", _S, "swap: another identity's reference; seed: the same as A"),
        ("identity_b", _S, "identity of reference B"),
        ("b_in_train", _B, "reference B's voice is a train identity (false: never seen in training); with "
         "`pairs.match` an attribute: B's value is carried by train pairs (false: a held-out value)"),
        ("value_a", _S, "with an attribute: reference A's value (the target's)"),
        ("value_b", _S, "with an attribute: reference B's value (another one, for swap cases)"),
    ),
)

FINGERPRINTS = TableSchema(
    "fingerprints", "a video's perceptual fingerprint (picture and sound hashes on its time grid, candidate "
    "vectors), stored in a memory-mappable Arrow file per partition (`ltxa_data.analysis.fingerprint`)",
    ("video_id",),
    (
        ("video_id", _S, "the video"),
        ("steps", _I, "picture hashes on its 0.5 s grid"),
        ("windows", _I, "candidate vectors"),
        ("has_sound", _B, "it has sound hashes (an audio track that is not silent)"),
        ("file", _S, "the Arrow IPC file holding its hashes, relative to output.dir"),
        ("row", _I, "its row in that file"),
    ),
)

DUPLICATES = TableSchema(
    "duplicates", "a video that is a copy of another (re-upload, re-encode, rescale, crop, trim, frame rate): its "
    "group, and whether it is the group's representative; videos without a copy have no row",
    ("video_id",),
    (
        ("video_id", _S, "the video"),
        ("group_id", _S, "the group: the smallest video_id of its members"),
        ("group_size", _I, "videos in the group"),
        ("representative", _B, "the group's best copy (most pixels, then longest, then with sound, then smallest "
         "id): with duplicates.targets one, the only member targets are cut from"),
        ("rel_path", _S, "the video's path relative to its input root"),
        ("matched_video_id", _S, "the member it was verified against (its strongest verified match)"),
        ("score", _F, "that match's deciding agreement, 2 x agreeing bits - 1 (sound when both have it, else "
         "picture)"),
        ("offset_s", _F, "where this video's t=0 falls on the matched video's clock"),
        ("overlap_s", _F, "seconds both cover at that offset"),
    ),
)

SHARDS = TableSchema(
    "shards", "sample key -> shard file, byte offset, split",
    ("key",),
    (
        ("key", _S, "sample key"),
        ("split", _S, "train / val / test"),
        ("shard", _S, "tar path relative to the shards folder"),
        ("offset", _I, "byte offset of the sample's first tar header"),
        ("nbytes", _I, "bytes the sample occupies in the tar"),
        ("members", pa.list_(_S), "tar member names of the sample"),
        ("sample_hash", _S, "hash of everything the sample was rendered from (its pairs row, windows, lineage, "
         "the shard settings, the checkpoint): a later run copies the sample's bytes instead of rendering it "
         "again while it is unchanged"),
        ("media_hash", _S, "the same, less what reaches only the sample's json (split, identity, scores, lineage): "
         "while it is unchanged, the media and latents are copied and the json rewritten"),
    ),
)

TABLES: dict[str, TableSchema] = {
    t.name: t for t in (VIDEOS, FINGERPRINTS, DUPLICATES, SCENES, TURNS, VOICES, IDENTITIES, TARGETS,
                        IDENTITY_FACES, REFERENCES, ATTRIBUTES, PAIRS, SWAP_EVAL, SHARDS)
}

ADDED_TABLES = ("attributes",)
"""Tables later versions added: a build made before one lacks it until it is built again."""

EVAL_RUNS = TableSchema(
    "eval_runs", "one generated file of a swap eval (`ltxa-data eval`): what its voice and face measured",
    ("run_id",),
    (
        ("run_id", _S, "the generation run (`runs.jsonl` of `export swap-eval`)"),
        ("file", _S, "the generated file read"),
        ("reference_id", _S, "the reference the run was generated from"),
        ("reference_identity", _S, "that reference's identity"),
        ("seed", _I, "the generation seed"),
        ("duration_s", _F, "the generated file's duration"),
        ("voice_embedding", pa.list_(pa.float32()), "the generated speech's embedding (the build's embedder, "
         "L2-normalised mean over embed.window_s windows); null with `voice_error`"),
        ("voice_error", _S, "why the voice was not measured (no audio track, silent)"),
        ("face_ratio", _F, "share of sampled frames showing exactly one face"),
        ("face_descriptor", pa.list_(pa.float32()), "the generated face's descriptor (the build's, averaged over "
         "targets.face_identity.frames frames); null with `face_error`"),
        ("face_error", _S, "why the face was not measured (no single face, several faces)"),
    ),
)

EVAL = TableSchema(
    "eval", "a swap-eval case scored on one measure (`voice` or `face`) of its two generated runs",
    ("case_id", "measure"),
    (
        ("case_id", _S, "the case (`swap_eval`)"),
        ("measure", _S, "`voice`: cosine similarity of embeddings (higher is closer); `face`: Euclidean "
         "descriptor distance (lower is closer)"),
        ("kind", _S, "`swap` (reference A vs B, one seed) or `seed` (reference A, two seeds: the control)"),
        ("split", _S, "the target's split"),
        ("target_id", _S, "the held-out target"),
        ("identity_a", _S, "the target's identity (reference A's)"),
        ("identity_b", _S, "reference B's identity (swap); identity A again (seed)"),
        ("b_in_train", _B, "swap: B's voice was seen in training"),
        ("run_a", _S, "run generated from reference A at seed A"),
        ("run_b", _S, "swap: run from reference B at the same seed; seed: reference A at seed B"),
        ("a_to_a", _F, "run A's output against identity A (its mean voice / dominant face)"),
        ("a_to_b", _F, "run A's output against identity B (swap)"),
        ("b_to_a", _F, "run B's output against identity A"),
        ("b_to_b", _F, "run B's output against identity B (swap)"),
        ("change", _F, "how far apart the two outputs are (voice: 1 - cosine; face: distance)"),
        ("effect", _F, "swap: how far swapping the reference moved the outputs toward their references' "
         "identities, (b_to_b - a_to_b) + (a_to_a - b_to_a) in closeness; > 0 is toward the right people"),
        ("seed_effect", _F, "swap: the same quantity when only the seed changes (run B replaced by the "
         "target's second-seed run): the noise floor `effect` is compared with"),
        ("seed_change", _F, "swap: `change` of the target's seed control"),
    ),
)

EVAL_TABLES: dict[str, TableSchema] = {t.name: t for t in (EVAL_RUNS, EVAL)}
"""Tables of `ltxa-data eval` (output.dir/evals/<name>/), not of a build."""


def _schema(name: str) -> TableSchema:
    return TABLES[name] if name in TABLES else EVAL_TABLES[name]


def to_table(name: str, rows: Iterable[dict]) -> pa.Table:
    """Build a table from row dicts, checked against its schema (extra or missing keys are errors)."""
    schema = _schema(name)
    rows = list(rows)
    cols = set(schema.columns)
    for r in rows:
        if set(r) != cols:
            extra, missing = sorted(set(r) - cols), sorted(cols - set(r))
            raise SchemaError(f"{name}: row {r.get(schema.key[0])!r} has extra {extra} / missing {missing} columns")
    try:
        table = pa.Table.from_pylist(rows, schema=schema.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(f"{name}: {e}") from None
    return conform(name, table)


def conform(name: str, table: pa.Table) -> pa.Table:
    """Check a table against its schema and return it in key order."""
    schema = _schema(name)
    if table.schema.names != schema.columns:
        raise SchemaError(f"{name}: columns {table.schema.names} do not match the schema {schema.columns}")
    try:
        table = table.cast(schema.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise SchemaError(f"{name}: {e}") from None
    status = table.column("status")
    bad = pc.invert(pc.is_in(status, pa.array(STATUSES)))
    if pc.any(bad).as_py():
        raise SchemaError(f"{name}: status must be one of {STATUSES}, got {set(pc.filter(status, bad).to_pylist())}")
    no_reason = pc.and_(pc.not_equal(status, "ok"), pc.equal(pc.fill_null(table.column("error"), ""), ""))
    if pc.any(no_reason).as_py():
        raise SchemaError(f"{name}: rows that are not ok must carry an error reason")
    if table.num_rows:
        table = table.sort_by([(k, "ascending") for k in schema.key])
        keys = table.select(list(schema.key)).to_pylist()
        if len({tuple(k.values()) for k in keys}) != len(keys):
            raise SchemaError(f"{name}: duplicate key {schema.key}")
    return table


def missing_columns(name: str, table: pa.Table | pa.Schema) -> list[str]:
    """The schema's columns a table lacks, when it is an older version of the table (every column it has is the
    schema's, in the schema's order); [] for a table that matches or that is not an older version."""
    names = table.names if isinstance(table, pa.Schema) else table.schema.names
    want = _schema(name).columns
    if names == want or not set(names) < set(want) or [c for c in want if c in names] != names:
        return []
    return [c for c in want if c not in names]


def upgraded(name: str, table: pa.Table) -> pa.Table:
    """An older version of a table (`missing_columns`) with the columns it lacks added, all null."""
    schema = _schema(name).arrow
    for c in missing_columns(name, table):
        i = schema.get_field_index(c)
        table = table.add_column(i, schema.field(i), pa.nulls(table.num_rows, schema.field(i).type))
    return table


def blank_row(name: str, **values: object) -> dict:
    """A row of the named table with every column null except `values`."""
    cols = TABLES[name].columns
    unknown = set(values) - set(cols)
    if unknown:
        raise SchemaError(f"{name}: no columns {sorted(unknown)}")
    return {c: values.get(c) for c in cols}


def empty(name: str) -> pa.Table:
    """An empty table with the named schema."""
    return TABLES[name].arrow.empty_table()
