"""The recipe's building blocks: the fixed shape of a target, the error a bad recipe raises, and the strict
model every section is."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

TARGET_FRAMES = 121
TARGET_FPS = 25
AUDIO_SAMPLE_RATE = 16000


class RecipeError(Exception):
    """A recipe cannot be used; the message names the recipe file and the offending key or path."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
