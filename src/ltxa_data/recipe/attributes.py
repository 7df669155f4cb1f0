"""The attributes section: what else than identity the audio may control (accent, language, emotion), where each
window's value comes from, and how pairs match on it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from .base import StrictModel

CLASSIFIER_BACKENDS = ("speechbrain_classifier",)


class AttributeConfig(StrictModel):
    """One attribute (`attributes.<name>`): every target and reference window gets a value (or none, with the
    reason) from exactly one source: a labels file, a path regex, or a classifier run on the window's audio."""

    labels: str | None = Field(default=None, description="A labels file (.csv, .jsonl or .parquet) with columns "
                               "`video` (absolute, relative to its input root, or a video_id), `value`, and optional "
                               "`start`/`end` seconds for a label that holds only for a span (both empty: the whole "
                               "video). A window takes the value of the rows that cover it (`min_coverage`); rows of "
                               "two values over one window are a conflict, and the window has no value.")
    label_regex: str | None = Field(default=None, description="A regex with a named group `value` applied to each "
                                    "file's path relative to its input root: a match gives every window of the video "
                                    "that value.")
    backend: Literal["speechbrain_classifier"] | None = Field(
        default=None, description="`speechbrain_classifier`: a speechbrain `EncoderClassifier` (VoxLingua107 "
        "language ID, CommonAccent accent ID; a folder with `custom_interface.py` is loaded as its `interface` "
        "class, e.g. the IEMOCAP emotion model) run on every window's 16 kHz mono audio.")
    model: str | None = Field(default=None, description="The classifier: hub id or local folder "
                              "(`hyperparams.yaml`, its checkpoints and `label_encoder.txt`).")
    interface: str | None = Field(default=None, description="With a folder holding `custom_interface.py`: the class "
                                  "in it to load (speechbrain's `foreign_class`), e.g. "
                                  "`CustomEncoderWav2vec2Classifier`.")
    min_confidence: float = Field(default=0.5, ge=0, le=1, description="A classifier's value is kept only when its "
                                  "probability (softmax of the model's scores) is at least this.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where the classifier runs; `auto`: "
                                                   "CUDA when torch sees one.")
    batch_size: int = Field(default=32, ge=1, description="Windows per classifier forward pass.")
    token_env: str = Field(default="HF_TOKEN", description="Environment variable holding the hub token (used when "
                           "set).")
    min_coverage: float = Field(default=0.5, ge=0.5, le=1, description="Labels with spans: the share of a window "
                                "the rows of its value must cover; another value covering more than the rest "
                                "(1 - min_coverage) is a conflict.")
    values: list[str] | None = Field(default=None, description="When set, the only values a window may take; a "
                                     "label or classifier value outside them leaves the window without one.")

    @model_validator(mode="after")
    def _one_source(self) -> AttributeConfig:
        given = [k for k in ("labels", "label_regex", "backend") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an attribute needs exactly one of `labels`, `label_regex` or `backend`"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.label_regex is not None:
            if "(?P<value>" not in self.label_regex:
                raise ValueError("label_regex needs a named group (?P<value>...)")
            try:
                re.compile(self.label_regex)
            except re.error as e:
                raise ValueError(f"label_regex is not a regular expression: {e}") from None
        if self.backend is not None and not self.model:
            raise ValueError(f"backend {self.backend} needs `model` (a hub id or a local folder)")
        if self.backend is None and (self.model or self.interface):
            raise ValueError("`model` and `interface` go with `backend`")
        return self

    @property
    def source(self) -> str:
        """Where the values come from: `labels`, `label_regex` or the backend's name."""
        return "labels" if self.labels else "label_regex" if self.label_regex else str(self.backend)


ReferenceSpeaker = Literal["same", "different", "any"]
