"""Recipes: YAML parsed into typed, strict config. Unknown keys are errors that name the key.

Relative paths in a recipe resolve against the directory of the recipe file, so a build, `status`
and `verify` find the same files from any working directory.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .attributes import AttributeConfig, ReferenceSpeaker
from .base import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, RecipeError, StrictModel
from .references import ReferencesConfig
from .targets import DEFAULT_SYNC_SCORE, ActiveSpeakerConfig, FaceConfig, FaceIdentityConfig, TargetsConfig

__all__ = ["AUDIO_SAMPLE_RATE", "DEFAULT_SYNC_SCORE", "TARGET_FPS", "TARGET_FRAMES", "ActiveSpeakerConfig",
           "AttributeConfig", "FaceConfig", "FaceIdentityConfig", "RecipeError", "ReferencesConfig", "StrictModel",
           "TargetsConfig"]


class InputConfig(StrictModel):
    paths: list[str] = Field(min_length=1, description="Folders (searched recursively), glob patterns, "
                             "or .txt files listing one video path per line.")
    extensions: list[str] = Field(
        default=[".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"],
        description="File endings taken from folders and globs (case-insensitive).",
    )
    label_regex: str | None = Field(
        default=None,
        description="Optional regex with a named group `label` applied to each file's path relative to its "
        "input root; a match names the identity of the clip's main speaker.",
    )

    source_regex: str | None = Field(
        default=None,
        description="Optional regex with a named group `source` applied to each file's path relative to its "
        "input root; a match names the clip's source (channel, show, session), and references then come from "
        "another source than their target.",
    )

    @field_validator("label_regex", "source_regex")
    @classmethod
    def _named_group(cls, v: str | None, info: ValidationInfo) -> str | None:
        group = info.field_name.removesuffix("_regex") if info.field_name else ""
        if v is not None and f"(?P<{group}>" not in v:
            raise ValueError(f"{info.field_name} needs a named group (?P<{group}>...)")
        return v


class OutputConfig(StrictModel):
    dir: str = Field(description="Where shards and build state go.")
    manifests: str | None = Field(default=None, description="Where manifest tables go (default: {dir}/manifests).")


class StageResources(StrictModel):
    """What one worker of one stage asks for, overriding the stage's own declaration. Written under the stage's
    name: `executor.resources.<stage>.<field>`, e.g. `executor.resources.diarize.gpus: 0.5`."""

    cpus: float | None = Field(default=None, gt=0, description="CPU cores one worker of the stage asks for "
                               "(default: the stage's own). `<stage>` is a stage name: `scan`, `scenes`, "
                               "`fingerprints`, `duplicates`, `diarize`, `embed`, `identify`, `targets`, "
                               "`identity_faces`, `references`, `attributes`, `pairs`, `swap_eval`, `shard`.")
    gpus: float | None = Field(default=None, ge=0, description="GPUs one worker of the stage asks for; a fraction "
                               "packs several workers on a card (0.5: two) (default: the stage's own, a GPU share "
                               "when its device is `cuda`, or `auto` where GPUs exist).")
    memory_gb: float | None = Field(default=None, ge=0, description="Host memory one worker of the stage asks for "
                                    "(Ray schedules by it; default: the stage's own estimate).")
    workers: int | None = Field(default=None, ge=1, description="Workers of the stage (default: "
                                "`executor.workers`, or one per GPU slot for a GPU stage).")


class RayConfig(StrictModel):
    """`executor.kind: ray`: the cluster the build runs on."""

    address: str | None = Field(default=None, description="`auto` (the cluster this node belongs to), "
                                "`ray://host:10001` (Ray Client), or none: a local cluster started for the build.")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of a local cluster (default: all).")
    num_gpus: int | None = Field(default=None, ge=0, description="GPUs of a local cluster (default: all).")
    node_ip_address: str | None = Field(default=None, description="This node's address for a local cluster "
                                        "(`127.0.0.1` keeps it on loopback).")
    include_dashboard: bool = Field(default=False, description="Start Ray's dashboard with a local cluster.")
    start_timeout_s: float = Field(default=120.0, gt=0, description="Starting a local cluster, or reaching "
                                   "the one at `address`, may take this long; then the build stops with what "
                                   "to check.")


class ExecutorConfig(StrictModel):
    kind: Literal["local", "ray"] = Field(default="local", description="`local`: worker processes on this "
                                          "machine; `ray`: actors on a Ray cluster (`pip install ltxa-data[ray]`).")
    workers: int = Field(default=2, ge=1, description="Workers for CPU stages (on Ray: actors in the cluster).")
    threads_per_worker: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto", description="torch/BLAS threads inside each worker; `auto`: this machine's cores (those the "
        "build may use) over the stage's workers, at least 1; on Ray, the CPUs each actor asks for.")
    gpus: list[int] | None = Field(default=None, description="Local executor: the GPUs GPU stages use (default: "
                                   "every GPU torch sees).")
    workers_per_gpu: int = Field(default=1, ge=1, description="Workers sharing one GPU in GPU stages (packing "
                                 "small models; each loads its own copy).")
    item_timeout_s: float | None = Field(default=1800.0, gt=0, description="A worker that starts or finishes "
                                         "no item for this long is stopped as hung, and its item retried, then "
                                         "recorded as failed (none: wait forever). CPU encoding of large "
                                         "batches may need more.")
    resources: dict[str, StageResources] = Field(default_factory=dict, description="Per stage, keyed by stage "
                                                 "name, what one worker asks for: `executor.resources.<stage>.cpus`, "
                                                 "`.gpus`, `.memory_gb`, `.workers` (e.g. "
                                                 "`executor.resources.diarize.gpus: 0.5`).")
    ray: RayConfig = RayConfig()


class ScanConfig(StrictModel):
    files_per_partition: int = Field(default=64, ge=1, description="Files probed per unit of resumable work.")
    check_packets: bool = Field(default=True, description="Demux every packet: catches truncated files and "
                                "measures true frame counts and VFR.")
    min_short_side: int = Field(default=256, ge=16, description="Reject videos whose shorter side is smaller.")
    min_duration_s: float = Field(default=3.5, ge=0, description="Reject clips shorter than this.")
    fingerprint_bytes: int = Field(default=1 << 20, ge=4096, description="Bytes read at start, middle and end "
                                   "of a file for its content fingerprint (plus the size).")


class ScenesConfig(StrictModel):
    detect: bool = Field(default=True, description="Detect hard cuts (PySceneDetect content detector); off: "
                         "every video is one shot.")
    threshold: float = Field(default=27.0, gt=0, description="Content-change score (HSV, 0-255) above which a "
                             "frame starts a new shot; PySceneDetect's default.")
    min_shot_s: float = Field(default=0.5, ge=0, description="Shortest shot: a cut closer than this to the "
                              "previous one is ignored (flashes).")
    videos_per_partition: int = Field(default=16, ge=1, description="Videos per unit of resumable work.")


class SileroVadConfig(StrictModel):
    threshold: float = Field(default=0.5, gt=0, lt=1, description="Speech probability threshold.")
    min_speech_ms: int = Field(default=250, ge=0, description="Drop speech regions shorter than this.")
    min_silence_ms: int = Field(default=300, ge=0, description="Silence that ends a region.")
    speech_pad_ms: int = Field(default=30, ge=0, description="Padding around each region.")
    local_speakers: Literal["cluster", "single"] = Field(
        default="cluster",
        description="`cluster`: split speech into local speakers by clustering voice embeddings of "
        "short windows (resemblyzer); `single`: all speech is one speaker.",
    )
    window_s: float = Field(default=1.5, gt=0.2, description="Window length for local speaker clustering.")
    speaker_threshold: float = Field(default=0.65, gt=0, lt=1,
                                     description="Average-linkage cosine similarity above which windows are one "
                                     "speaker (resemblyzer, 1.5 s windows: same voice ~0.82, others ~0.57).")
    centroid_merge_threshold: float = Field(default=0.8, gt=0, lt=1,
                                            description="Local speakers whose mean embeddings are this similar "
                                            "are merged (same voice >= 0.88, others <= 0.81 on the demo corpus).")


class PyannoteConfig(StrictModel):
    model: str = Field(default="pyannote/speaker-diarization-community-1",
                       description="Hub id or local directory of a pyannote.audio pipeline.")
    token_env: str = Field(default="HF_TOKEN", description="Environment variable holding the hub token.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="`auto`: CUDA when present.")
    segmentation_batch_size: int = Field(default=32, ge=1, description="Segmentation model batch size.")
    embedding_batch_size: int = Field(default=32, ge=1, description="Embedding model batch size.")
    segmentation_step: float | None = Field(default=None, gt=0, le=1, description="Step between segmentation "
                                            "chunks as a fraction of their 10 s length (none: the pipeline's 0.1); "
                                            "0.5 diarizes 4.9x faster on a CPU (measured: "
                                            "benchmarks/speech_throughput.py, 2 cores, 1 min of noise at speech "
                                            "level) and is a little less precise at turn edges.")
    min_speakers: int | None = Field(default=None, ge=1, description="Lower bound on speakers per video, if known.")
    max_speakers: int | None = Field(default=None, ge=1, description="Upper bound on speakers per video, if known.")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> PyannoteConfig:
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers ({self.min_speakers}) is larger than max_speakers ({self.max_speakers})")
        return self


class DiarizeConfig(StrictModel):
    backend: Literal["silero_vad", "pyannote"] = Field(default="silero_vad", description="`silero_vad` "
                                                       "(offline) or `pyannote` (pyannote.audio).")
    videos_per_partition: int = Field(default=16, ge=1, description="Videos per unit of resumable work (also "
                                      "used by targets and references).")
    silero_vad: SileroVadConfig = SileroVadConfig()
    pyannote: PyannoteConfig = PyannoteConfig()


class SpeechbrainConfig(StrictModel):
    model: str = Field(default="speechbrain/spkrec-ecapa-voxceleb",
                       description="Hub id or local directory (hyperparams.yaml + embedding_model.ckpt).")
    token_env: str = Field(default="HF_TOKEN", description="Environment variable holding the hub token "
                           "(used when set; the model is public).")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="`auto`: CUDA when present.")
    batch_size: int = Field(default=64, ge=1, description="Windows per forward pass.")


class EmbedConfig(StrictModel):
    backend: Literal["resemblyzer", "speechbrain_ecapa"] = Field(default="resemblyzer", description="`resemblyzer` "
                                                                 "(offline) or `speechbrain_ecapa`.")
    videos_per_partition: int = Field(default=32, ge=1, description="Videos per unit of resumable work.")
    min_speech_s: float = Field(default=2.0, gt=0, description="Speakers with less clean speech are skipped.")
    window_s: float = Field(default=2.0, gt=0.2, description="Speech window length; window embeddings are averaged.")
    max_windows: int = Field(default=16, ge=1, description="At most this many windows per speaker.")
    speechbrain_ecapa: SpeechbrainConfig = SpeechbrainConfig()


class IdentifyConfig(StrictModel):
    similarity_threshold: float = Field(default=0.8, gt=0, lt=1, description="Average-linkage cosine "
                                        "similarity above which voices are one identity.")
    labels_csv: str | None = Field(default=None, description="CSV with columns `video` (path, path relative "
                                   "to its input root, or video_id) and `identity`: must-links naming the "
                                   "main speaker of each listed video (overrides input.label_regex).")
    neighbors: int = Field(default=16, ge=1, description="Nearest neighbours per voice in the similarity graph.")
    max_component: int = Field(default=2000, ge=2, description="Graph components larger than this are split "
                               "at a higher threshold before exact clustering inside them.")

class SplitsConfig(StrictModel):
    """`pairs.splits`: how identities are split into train, val and test. Identities that share a video (and
    copies of one clip) form a group that lands in one split; a group keeps the split it had in the previous
    build. What the fractions are shares of depends on `by` (`analysis/splits.py`)."""

    train: float = Field(default=0.8, ge=0, description="Share of train: of identity groups (`by: identities`) "
                         "or of hours of target video (`by: hours`).")
    val: float = Field(default=0.1, ge=0, description="Share of val (as `train`).")
    test: float = Field(default=0.1, ge=0, description="Share of test (as `train`).")
    by: Literal["identities", "hours"] = Field(default="identities", description="What the fractions are shares "
                                               "of. `identities`: each new group is placed by a hash of (seed, "
                                               "its lowest-hash identity) on the cumulative fractions, so they are "
                                               "expected shares of groups, whatever their hours; `hours`: of hours "
                                               "of target video (targets x 4.84 s per identity): new groups, in "
                                               "hash order, each go to the split furthest below its share of all "
                                               "target hours (for corpora where a few identities hold many "
                                               "hours).")
    near_duplicate_similarity: float = Field(default=0.9, gt=0, le=1, description="`verify` reports identities "
                                             "of different splits whose mean voices are at least this similar "
                                             "(cosine): possibly one person split in two (ECAPA: ~0.75).")
    held_out_values: list[str] = Field(default=[], description="With `pairs.match` an attribute: values held out "
                                       "for test, to measure values never seen in training. Identity groups whose "
                                       "targets mostly carry one go to test; windows of a held-out value in train or "
                                       "val are left out of the pairs (skipped, with the reason).")

    @model_validator(mode="after")
    def _sum(self) -> SplitsConfig:
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError("split fractions must add up to 1")
        return self


class DuplicatesConfig(StrictModel):
    """Copies of one clip among the videos (re-uploads, re-encodes, rescales, crops, trims, another frame
    rate), found by perceptual fingerprints of picture and sound (`ltxa_data.analysis.fingerprint`). A group of copies
    lives in one split, and a target never gets a reference from a copy of its own video."""

    detect: bool = Field(default=True, description="Fingerprint every video and group the copies (about one "
                         "decode of each file at 160 px, two frames a second, plus its sound at 8 kHz).")
    targets: Literal["one", "all"] = Field(default="one", description="`one`: targets come only from each group's "
                                           "representative (its best copy), so one clip is not trained on several "
                                           "times; `all`: from every member (still one split, no references "
                                           "within the group).")
    sound_threshold: float = Field(default=0.73, gt=0.5, le=1, description="Two videos with sound are copies when "
                                   "this share of their sound-hash bits agrees at the best offset (copies: >= "
                                   "0.78, other speech of the same voice: <= 0.68, measured).")
    picture_threshold: float = Field(default=0.88, gt=0.5, le=1, description="Without sound on both: the share of "
                                     "picture-hash bits that must agree (copies >= 0.90, other clips of one drawn "
                                     "speaker <= 0.87).")
    picture_contrast: float = Field(default=0.15, ge=0, le=1, description="Without sound: how far the picture's "
                                    "agreement at the offset must stand above its median over all offsets (a "
                                    "static shot matches anywhere).")
    min_overlap_s: float = Field(default=2.0, gt=0, description="Shortest stretch two copies must share.")
    min_coverage: float = Field(default=0.5, gt=0, le=1, description="Share of the shorter video the overlap must "
                                "cover (a shared intro does not make two episodes copies).")
    neighbors: int = Field(default=16, ge=1, description="Nearest candidate vectors searched per vector.")
    min_similarity: float = Field(default=0.5, ge=-1, le=1, description="Cosine of candidate vectors below which a "
                                  "pair is not verified.")
    nprobe: int = Field(default=16, ge=1, description="Above 100k vectors (an approximate inverted-file search): "
                        "lists probed per query (more: higher recall, slower).")
    videos_per_partition: int = Field(default=16, ge=1, description="Videos fingerprinted per unit of resumable "
                                      "work.")


class PairsConfig(StrictModel):
    seed: int = Field(default=0, description="Seeds reference choice and split assignment.")
    match: str = Field(default="identity", description="What a target and its references share: `identity` (the "
                       "speaker) or the name of an attribute (`attributes.<name>`): references then carry the "
                       "target's value of it. With an attribute, identities are placed in splits value by value, so "
                       "that each split holds speakers of every value it can.")
    reference_speaker: ReferenceSpeaker | None = Field(
        default=None, description="How a reference's speaker relates to its target's: `same`, `different` or `any` "
        "(default: `same` for `match: identity`, `different` for an attribute, so that the attribute is the only "
        "thing they share). A reference always comes from another clip and from the target's split.")
    references_per_target: int = Field(default=1, ge=1, description="Distinct references chosen per target.")
    quality_weight: float = Field(default=4.0, ge=0, description="How strongly reference choice prefers quality "
                                  "within a quality band (`quality_band`): a target's references are drawn (seeded, "
                                  "without replacement, one per video first) with weight `quality` ** "
                                  "quality_weight; 0 draws uniformly. At 4, a reference of quality 0.5 is drawn 1/16 "
                                  "as often as one of quality 1.")
    quality_band: float = Field(default=0.25, ge=0, le=1, description="References are ranked in bands of this "
                                "width of `quality`, counted from 1 (with DNSMOS 0.25 is 0.58 OVRL: clean real speech, "
                                "OVRL >= 2.75, is one band, so behind the default floors every kept reference is; "
                                "with `snr`, a speech ratio x SNR score): a better band always wins, even over "
                                "spreading a target's references over clips, and quality_weight draws within a "
                                "band; 0: no bands.")
    splits: SplitsConfig = Field(default=SplitsConfig(), description="Split fractions `train`, `val`, `test` "
                                 "(they add up to 1) and `by`: with `by: identities` (default) they are shares "
                                 "of identity groups (identities that share a video land in one split), each "
                                 "placed by a hash; with `by: hours` they are shares of hours of target video "
                                 "(targets x 4.84 s), groups placed greedily to fill each split's share. "
                                 "`near_duplicate_similarity`: `verify` reports identities of different splits "
                                 "whose mean voices are at least this similar (cosine).")


class SwapEvalConfig(StrictModel):
    targets_per_identity: int = Field(default=4, ge=1, description="Held-out targets per identity that get "
                                      "evaluation cases.")
    include_train_voices: bool = Field(default=True, description="Also swap in voices of train identities "
                                       "(held-out voices are always included).")
    seed: int = Field(default=0, description="Seeds the choice of targets, B voices and generation seeds.")


class ReportConfig(StrictModel):
    """The HTML build report (`ltxa-data report`, and the end of every `build`): the funnel, plots, contact
    sheets, playable pairs, swap-eval cases, rejected files. It opens from disk with no server."""

    enabled: bool = Field(default=True, description="Write the report at the end of every build.")
    dir: str | None = Field(default=None, description="Where to write it (default: `report/` in output.dir).")
    pairs: int = Field(default=12, ge=0, description="Pairs shown with players (target video with its audio, "
                       "references), spread over the splits.")
    contact_sheet: int = Field(default=48, ge=0, description="Samples per split on its contact sheet.")
    table_rows: int = Field(default=5000, ge=1, description="Most rows of a table in the page (rejected files, "
                            "swap-eval cases); the manifests hold them all.")


class ShardConfig(StrictModel):
    samples_per_shard: int = Field(default=256, ge=1, description=(
        "Samples per shard (and per unit of work), on average: samples go to shards by a hash of their key, so a "
        "take-down rewrites only the shards that held its samples. Each split gets a power-of-two count of shards "
        "holding half to all of this many; a later build keeps the count while they hold a quarter to twice it."))
    max_shard_bytes: int = Field(default=1 << 30, ge=1 << 16, description="A shard rolls over past this size.")
    video_crf: int = Field(default=18, ge=0, le=51, description="x264 quality of target mp4s.")


class EncodeConfig(StrictModel):
    backend: Literal["none", "ltx"] = Field(default="none", description="`none`: shards carry media only; "
                                            "`ltx`: LTX-2 VAE latents (ltx-core) in the trainer's format.")
    checkpoint: str | None = Field(default=None, description="The unified LTX-2.3 checkpoint (.safetensors, model "
                                   "config under its `config` metadata), or the video VAE file when "
                                   "`audio_checkpoint` is set.")
    audio_checkpoint: str | None = Field(default=None, description="The audio VAE file, for checkpoints split into "
                                         "VAE files.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="`auto`: CUDA when torch sees one.")
    video_dtype: Literal["bfloat16", "float32"] = Field(default="bfloat16", description="Video VAE weights, "
                                                         "compute and stored latents. On a CPU without bf16 units "
                                                         "(AVX512-BF16, AMX-BF16), which runs bf16 convolutions "
                                                         "over 100x slower, bfloat16 computes in float32 and still "
                                                         "stores bf16 latents. The audio VAE always runs in float32.")
    batch_size: int = Field(default=4, ge=1, description="Targets per video-encoder batch (references go 4x this); "
                            "halved on GPU out-of-memory.")
    decode_threads: int = Field(default=4, ge=1, description="Threads cutting samples (decode, crop, resample) "
                                "ahead of the encoder.")
    prefetch_batches: int = Field(default=2, ge=1, description="Batches cut ahead of the one being encoded.")
    keep_media: bool = Field(default=True, description="Keep the mp4/wav media beside the latents in each sample.")

    @model_validator(mode="after")
    def _checkpoint_for_ltx(self) -> EncodeConfig:
        if self.backend == "ltx" and not self.checkpoint:
            raise ValueError("encode.backend ltx needs encode.checkpoint (the LTX-2.3 .safetensors)")
        return self


class ExportConfig(StrictModel):
    """`ltxa-data export ltx-trainer OUT`: the trainer's `.precomputed` folders per split."""

    conditions: str | None = Field(default=None, description="The caption's conditions file (.pt with "
                                   "video_prompt_embeds, audio_prompt_embeds, prompt_attention_mask), linked "
                                   "for every sample.")
    references: Literal["first", "stack", "expand"] = Field(
        default="first", description="`first`: reference 0 as [8, T, 16] (the upstream trainer); `stack`: "
        "[K, 8, T, 16] with `variants` = K (the audio-only fork); `expand`: K keys, one reference each.")
    video_masks: Literal["none", "face", "everything"] = Field(
        default="none", description="Video masks for ltx-trainer's `mask` condition (`video_masks/<key>.pt`, "
        "`{\"mask\": float32 [F, H, W]}` at latent resolution; 1 = conditioning token, kept clean and out of the "
        "loss, 0 = generated). `face`: the face cells of `face_mask_latent.npy` are generated, the rest is "
        "conditioning, so the face must come from the reference voice; `everything`: all tokens generated; "
        "`none`: no masks. The dataset export writes the same masks as `video_mask` media.")
    caption: str = Field(default="A person talking to the camera.", min_length=1,
                         description="The caption every sample is trained with.")
    text_encoder: str | None = Field(default=None, description="The Gemma 3 12B folder LTX-2 uses as text encoder "
                                     "(google/gemma-3-12b-it-qat-q4_0-unquantized: config.json, model-*.safetensors, "
                                     "tokenizer.model, preprocessor_config.json). Set instead of `conditions`: the "
                                     "caption's conditions are then computed with ltx-core's text encoder, once per "
                                     "build (cached in output.dir/.cache/conditions).")
    text_checkpoint: str | None = Field(default=None, description="The LTX-2.3 checkpoint holding the text "
                                        "projection and embeddings connectors that go with `text_encoder` "
                                        "(default: `encode.checkpoint`).")
    text_encoder_device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where `text_encoder` "
                                                                "runs; `auto`: CUDA when torch sees one.")
    text_encoder_dtype: Literal["bfloat16", "float32"] = Field(
        default="bfloat16", description="Weights and compute dtype of `text_encoder` (bfloat16 as ltx-trainer; "
        "float32 runs faster on CPUs without bf16 units, at twice the memory). Embeddings are stored in bfloat16.")

    @model_validator(mode="after")
    def _one_conditions_source(self) -> ExportConfig:
        if self.conditions and self.text_encoder:
            raise ValueError("export.conditions (a given conditions file) and export.text_encoder (compute them) "
                             "are both set: set one")
        if self.text_checkpoint and not self.text_encoder:
            raise ValueError("export.text_checkpoint is set without export.text_encoder")
        return self


class CorpusConfig(StrictModel):
    """The generated sample corpus (`ltxa-data corpus`, `ltxa-data demo`)."""

    seed: int = Field(default=0, description="Seeds every random choice of the generator.")
    speakers: int = Field(default=8, ge=2, le=8, description="Distinct espeak-ng voices (without `accents`).")
    accents: list[str] = Field(default=[], description="espeak-ng English accents (`en-us`, `en-gb-x-rp`, "
                               "`en-gb-scotland`, ...): when set, the corpus has `speakers_per_accent` speakers "
                               "of each, in place of `speakers`, and a labels file `labels/accent.csv`.")
    speakers_per_accent: int = Field(default=4, ge=1, le=8, description="Speakers per accent (with `accents`).")
    clips_per_speaker: int = Field(default=3, ge=1, description="Single-speaker clips per voice.")
    two_speaker_clips: int = Field(default=2, ge=0, description="Clips with two speakers taking turns.")
    scene_cut_clips: int = Field(default=1, ge=0, description="Clips with a hard scene cut.")
    short_clips: int = Field(default=2, ge=0, description="Clips shorter than one target window.")
    listener_clips: int = Field(default=1, ge=0, description="Clips showing another person listening while the "
                                "voice talks (an interview's reaction shot).")
    still_clips: int = Field(default=1, ge=0, description="Clips showing a still picture of the speaker over the "
                             "voice (podcast cover art).")
    dub_clips: int = Field(default=1, ge=0, description="Clips whose face moves its mouth to other words than the "
                           "voice says (a dub, a desynchronised edit).")
    lipsync_clips: int = Field(default=1, ge=0, description="Clips showing another identity's face lip-synced to "
                               "the voice (it moves with the voice but is not its owner).")
    phone_clips: int = Field(default=1, ge=0, description="Portrait phone clips stored sideways with rotation "
                             "metadata (90 degrees, then 270, 180).")
    reverb_clips: int = Field(default=0, ge=0, description="Clips whose voice is heavily reverberant (RT60 1 s, as "
                              "in a bare hall): no reference, no target should come from them.")
    music_clips: int = Field(default=0, ge=0, description="Clips whose voice runs over a music bed 10 dB under it.")
    subtitle_clips: int = Field(default=0, ge=0, description="Clips with subtitles burned in under the face.")
    blur_clips: int = Field(default=0, ge=0, description="Out-of-focus clips (the whole picture blurred).")
    tiny_face_clips: int = Field(default=0, ge=0, description="Wide shots stored at 456x256: the face is small in "
                                 "the source and a 512-px target would enlarge it more than 3x.")
    turned_clips: int = Field(default=0, ge=0, description="Clips whose head is turned well to one side (a "
                              "three-quarter view).")
    copy_clips: int = Field(default=0, ge=0, le=8, description="Copies of single-speaker clips of as many "
                            "speakers, re-uploaded cropped and rescaled, trimmed, or at another frame rate (in "
                            "turn): the duplicates stage must group each with its original.")
    clip_seconds: tuple[float, float] = Field(default=(7.0, 11.0), description="Length range of normal clips.")


SCHEDULING_ONLY = {"encode": ("batch_size", "decode_threads", "prefetch_batches")}
"""Fields that change how fast a stage runs, not what it writes: left out of completion hashes."""


class Recipe(StrictModel):
    """A whole build. Sections map one to one onto pipeline stages."""

    name: str = Field(description="Build name, shown in progress and status.")
    input: InputConfig
    output: OutputConfig
    executor: ExecutorConfig = ExecutorConfig()
    scan: ScanConfig = ScanConfig()
    duplicates: DuplicatesConfig = DuplicatesConfig()
    scenes: ScenesConfig = ScenesConfig()
    diarize: DiarizeConfig = DiarizeConfig()
    embed: EmbedConfig = EmbedConfig()
    identify: IdentifyConfig = IdentifyConfig()
    targets: TargetsConfig = TargetsConfig()
    references: ReferencesConfig = ReferencesConfig()
    pairs: PairsConfig = PairsConfig()
    swap_eval: SwapEvalConfig = SwapEvalConfig()
    shard: ShardConfig = ShardConfig()
    encode: EncodeConfig = EncodeConfig()
    export: ExportConfig = ExportConfig()
    report: ReportConfig = ReportConfig()
    attributes: dict[str, AttributeConfig] = Field(default_factory=dict, description="Attributes every target "
                                                   "and reference window gets a value of (`attributes.<name>`), "
                                                   "for `pairs.match`.")
    corpus: CorpusConfig | None = Field(default=None, description="Set for a generated corpus (demo, tests).")

    # Set by load_recipe; not a YAML key.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _pairs_match(self) -> Recipe:
        for name in self.attributes:
            if not name.isidentifier() or name == "identity":
                raise ValueError(f"attributes.{name}: an attribute's name is a word of letters, digits and _, "
                                 "not `identity`")
        p = self.pairs
        if p.match != "identity" and p.match not in self.attributes:
            raise ValueError(f"pairs.match: {p.match!r} is neither `identity` nor an attribute "
                             f"({', '.join(self.attributes) or 'attributes is empty'})")
        if p.match == "identity" and p.reference_speaker not in (None, "same"):
            raise ValueError(f"pairs.reference_speaker: {p.reference_speaker} needs pairs.match to be an attribute "
                             "(with match: identity, a reference is the same speaker's)")
        if p.match == "identity" and p.splits.held_out_values:
            raise ValueError("pairs.splits.held_out_values needs pairs.match to be an attribute")
        return self

    @property
    def reference_speaker(self) -> str:
        """How a reference's speaker relates to its target's (`pairs.reference_speaker`, or its default)."""
        return self.pairs.reference_speaker or ("same" if self.pairs.match == "identity" else "different")

    def resolve(self, p: str | Path) -> Path:
        """A recipe path made absolute against the recipe file's folder."""
        p = Path(p).expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else self.base_dir / p))

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.output.dir)

    @property
    def manifests_dir(self) -> Path:
        return self.resolve(self.output.manifests) if self.output.manifests else self.output_dir / "manifests"

    @property
    def report_dir(self) -> Path:
        return self.resolve(self.report.dir) if self.report.dir else self.output_dir / "report"

    @property
    def shards_dir(self) -> Path:
        return self.output_dir / "shards"

    def section_hash(self, *sections: str) -> str:
        """Hash of the named recipe sections: what a stage's completion markers depend on."""
        dumped = self.model_dump(mode="json")
        data = {s: {k: v for k, v in dumped[s].items() if k not in SCHEDULING_ONLY.get(s, ())}
                if isinstance(dumped[s], dict) else dumped[s] for s in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_recipe(path: str | Path, check_inputs: bool = False) -> Recipe:
    """Parse and validate a recipe file. Errors name the file and the key (or the missing path)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of sections")
    recipe = parse_recipe(data, source=str(path), base_dir=path.parent.absolute())
    if check_inputs:
        missing = missing_inputs(recipe)
        if missing:
            raise RecipeError(f"{path}: " + "; ".join(missing))
    return recipe


def parse_recipe(data: dict[str, Any], source: str = "<recipe>", base_dir: Path = Path(".")) -> Recipe:
    """Validate a recipe mapping; see `load_recipe`."""
    try:
        recipe = Recipe.model_validate({**data, "base_dir": base_dir})
    except ValidationError as e:
        raise RecipeError(f"{source}: " + "; ".join(_explain(err) for err in e.errors())) from None
    if "base_dir" in data:
        raise RecipeError(f"{source}: unknown key 'base_dir'")
    return recipe


def _explain(err: dict[str, Any]) -> str:
    loc = ".".join(str(x) for x in err["loc"])
    if err["type"] == "extra_forbidden":
        parent, key = err["loc"][:-1], str(err["loc"][-1])
        model: Any = Recipe
        for part in parent:
            field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
            model = field.annotation if field is not None else None
        known = list(model.model_fields) if hasattr(model, "model_fields") else []
        hint = difflib.get_close_matches(key, known, n=1)
        return f"unknown key '{loc}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if err["type"] == "missing":
        return f"missing key '{loc}'"
    return f"'{loc}': {err['msg']}"


def missing_inputs(recipe: Recipe) -> list[str]:
    """Input paths in the recipe that do not exist (globs must match at least one file)."""
    out = []
    if recipe.identify.labels_csv and not recipe.resolve(recipe.identify.labels_csv).is_file():
        out.append(f"identify.labels_csv: file does not exist: {recipe.resolve(recipe.identify.labels_csv)}")
    for i, raw in enumerate(recipe.input.paths):
        p = recipe.resolve(raw)
        if any(ch in raw for ch in "*?["):
            if not any(Path(p.anchor).glob(str(p.relative_to(p.anchor)))):
                out.append(f"input.paths[{i}]: glob '{raw}' matches no file")
        elif not p.exists():
            out.append(f"input.paths[{i}]: path does not exist: {p}")
    return out


def setting(recipe: Recipe, field: str) -> Any:
    """A recipe field's value by its dotted name (`targets.face.detector`)."""
    obj: Any = recipe
    for part in field.split("."):
        obj = getattr(obj, part)
    return obj
