"""attributes: every target and reference window's value of each attribute of the recipe (`attributes.<name>`),
from a labels file, a path regex or a classifier run on the window's audio, or why it has none.

One row per window and attribute. Labels files are read in the driver (`plan`), and each partition carries its
videos' rows, so an edited labels file reruns exactly the videos whose rows changed. Without a classifier the stage
runs in the driver (tables only); with one, in workers, one decode of each video's sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ..analysis.attribute_labels import (
    LabelRow,
    WindowValue,
    label_of_window,
    labels_by_video,
    read_labels,
    regex_value,
)
from ..gates import failure
from ..media import read_audio
from ..recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, AttributeConfig, Recipe
from ..schemas import blank_row
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .scan import ok_videos

LABEL_COLUMNS = {"attribute": pl.String, "video_id": pl.String, "where": pl.String, "video": pl.String,
                 "value": pl.String, "start": pl.Float64, "end": pl.Float64}


def windows_frame(targets: pl.DataFrame, references: pl.DataFrame) -> pl.DataFrame:
    """The ok target and reference windows: window_id, window, video_id, identity_id, start_s, duration_s."""
    t = targets.filter(pl.col("status") == "ok").select(
        pl.col("target_id").alias("window_id"), pl.lit("target").alias("window"), "video_id", "identity_id",
        "start_s", pl.lit(TARGET_FRAMES / TARGET_FPS).alias("duration_s"))
    r = references.filter(pl.col("status") == "ok").select(
        pl.col("reference_id").alias("window_id"), pl.lit("reference").alias("window"), "video_id", "identity_id",
        "start_s", pl.col("duration_s").cast(pl.Float64))
    return pl.concat([t, r]).sort("window_id")


class AttributesStage(Stage):
    name = "attributes"
    table = "attributes"
    reads = ("videos", "targets", "references")
    sections = ("attributes",)
    version = "2"  # 2: overlapping label rows of one value count once; windows past the sound's end padded

    def __init__(self, recipe: Recipe) -> None:
        super().__init__(recipe)
        self.classified = [n for n, a in recipe.attributes.items() if a.backend]
        self.in_driver = not self.classified  # type: ignore[misc]  # labels alone read no media file

    def devices(self) -> list[str]:
        return [self.recipe.attributes[n].device for n in self.classified]

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        if not self.recipe.attributes:
            return []
        windows = windows_frame(tables["targets"], tables["references"])
        videos = ok_videos(tables["videos"]).filter(pl.col("video_id").is_in(windows["video_id"].unique().to_list()))
        videos = videos.select("video_id", "path", "rel_path", "duration_s")
        labels = []
        for name, cfg in self.recipe.attributes.items():
            if cfg.labels:
                rows = read_labels(self.recipe.resolve(cfg.labels))  # checked by preflight
                labels += [dict(attribute=name, video_id=vid, where=r.where, video=r.video, value=r.value,
                                start=r.start, end=r.end)
                           for vid, rs in labels_by_video(rows, videos).items() for r in rs]
        label_frame = pl.DataFrame(labels, schema=LABEL_COLUMNS).sort("attribute", "video_id", "where")
        return partitions_by("video_id", self.recipe.diarize.videos_per_partition,
                             {"videos": videos, "windows": windows, "labels": label_frame},
                             previous=self.previous_buckets.get(""))

    def setup(self) -> None:
        self.classifiers = {}
        if self.classified:
            from ..backends import load_attribute_classifier

            self.classifiers = {n: load_attribute_classifier(self.recipe, n) for n in self.classified}

    def process(self, partition: Partition) -> StageResult:
        windows, labels = partition.data["windows"], partition.data["labels"]
        work = [(v, windows.filter(pl.col("video_id") == v["video_id"]).to_dicts(),
                 labels.filter(pl.col("video_id") == v["video_id"]))
                for v in partition.data["videos"].to_dicts()]
        rows = guarded(work, lambda item: self.values_of(*item), self._failed, lambda item: item[0]["path"])
        return StageResult(rows)

    def values_of(self, video: dict, windows: list[dict], labels: pl.DataFrame) -> list[dict]:
        """Every window's value of every attribute, for one video."""
        rows = []
        for name, cfg in self.recipe.attributes.items():
            if cfg.labels:
                mine = [LabelRow(r["where"], r["video"], r["value"], r["start"], r["end"])
                        for r in labels.filter(pl.col("attribute") == name).iter_rows(named=True)]
                file = Path(cfg.labels).name
                values = [label_of_window(mine, w["start_s"], w["start_s"] + w["duration_s"], cfg, file)
                          for w in windows]
            elif cfg.label_regex:
                values = [regex_value(cfg.label_regex, video["rel_path"])] * len(windows)
            else:
                values = self._classify(name, cfg, video, windows)
            for w, v in zip(windows, values, strict=True):
                v = allowed(v, cfg, name)
                rows.append(dict(w, attribute=name, value=v.value, confidence=v.confidence, source=v.source,
                                 status="ok" if v.value is not None else "skipped",
                                 error=None if v.value is not None else failure(video["rel_path"], v.reason or "")))
        return rows

    def _classify(self, name: str, cfg: AttributeConfig, video: dict, windows: list[dict]) -> list[WindowValue]:
        if not windows:
            return []
        self.check_unchanged(video)
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1)[0]
        waves = []
        for w in windows:  # zero-padded to the window's length, as the shard carries a window past the sound's end
            a, n = round(w["start_s"] * AUDIO_SAMPLE_RATE), round(w["duration_s"] * AUDIO_SAMPLE_RATE)
            part = audio[a : a + n]
            waves.append(np.pad(part, (0, n - len(part))) if 0 < len(part) < n else part)
        model = Path(str(cfg.model)).name
        heard = [wave for wave in waves if len(wave)]
        said = iter(self.classifiers[name].classify(heard) if heard else [])
        out = []
        for wave in waves:
            if len(wave) == 0:
                out.append(WindowValue(None, model, "the window is past the end of the sound", None))
                continue
            label, p = next(said)
            p = round(float(p), 6)
            if p < cfg.min_confidence:
                out.append(WindowValue(None, model, f"{model} says {label!r} with probability {p:.3f}, under "
                                       f"attributes.{name}.min_confidence {cfg.min_confidence:g}", p))
            else:
                out.append(WindowValue(label, model, None, p))
        return out

    def _failed(self, item: tuple[dict, list[dict], pl.DataFrame], reason: str) -> list[dict]:
        video, windows, _ = item
        return [blank_row("attributes", **w, attribute=name, status="failed", error=failure(video["rel_path"], reason))
                for name in self.recipe.attributes for w in windows]


def allowed(v: WindowValue, cfg: AttributeConfig, name: str) -> WindowValue:
    """`v`, or no value when `attributes.<name>.values` lists the values and this is not one of them."""
    if v.value is None or not cfg.values or v.value in cfg.values:
        return v
    return WindowValue(None, v.source, f"{v.value!r} ({v.source}) is not one of attributes.{name}.values", v.confidence)

