"""Gates and rejections as data.

A gate is a rule a target window or a reference must pass: a measured value against a threshold the recipe
sets. The stage that decides a gate writes its record, {name, value, threshold, passed}, in its table's
`gates` column (the targets and references tables); `verify`, `explain`, `status` and the report read those
records and the declarations below, and never re-derive a rule. A new gate is one `Gate` here plus its
measurement in the stage that decides it.

A row that is not ok says why in `error`, written by `failure(subject, reason)`: the file (or item) first,
then the reason. `reason_of` is its one inverse; no other module parses an error.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .recipe import Recipe, setting

GATE_RECORD = pa.struct([("name", pa.string()), ("value", pa.float64()), ("threshold", pa.float64()),
                         ("passed", pa.bool_())])
GATES_TYPE = pa.list_(GATE_RECORD)
"""The `gates` column: a row's gate records, in the order they were decided."""


@dataclass(frozen=True)
class Gate:
    """One rule: `value op threshold` passes (`op` is `>=` or `<=`, within `tolerance`)."""

    name: str
    stage: str
    """The stage that decides it (and writes its record)."""
    measure: str
    """What the value is, in words."""
    op: str
    setting: str
    """The recipe field of the threshold (or the fixed rule), as a user reads it."""
    threshold_of: Callable[[Recipe], float]
    fails: str
    """What a failure means, in words: the reason rejections group under."""
    tolerance: float = 0.0
    column: str | None = None
    """The row's column that holds the measured value too (verify checks that the two agree)."""
    absolute: bool = False
    """The value is the column's magnitude (a signed offset)."""
    applies: Callable[[Recipe], bool] = lambda _: True
    """Whether the recipe turns the gate on: every kept row then carries its record."""

    def passes(self, value: float | None, threshold: float) -> bool:
        if value is None or math.isnan(value):
            return False
        return value >= threshold - self.tolerance if self.op == ">=" else value <= threshold + self.tolerance

    def record(self, value: float | None, recipe: Recipe) -> dict[str, Any]:
        """The record of this gate for a measured value (None: could not be measured, which fails)."""
        threshold = float(self.threshold_of(recipe))
        return {"name": self.name, "value": None if value is None else float(value), "threshold": threshold,
                "passed": self.passes(value, threshold)}

    def describe(self, record: Mapping[str, Any]) -> str:
        """`active-speaker score 1.2 < 2 (targets.active_speaker.min_score)`: the comparison its value and
        threshold make."""
        op = self.op if self.passes(record["value"], record["threshold"]) else {">=": "<", "<=": ">"}[self.op]
        value, threshold = _num(record["value"]), _num(record["threshold"])
        if value == threshold and record["value"] != record["threshold"]:  # 1.5996 < 1.6 must not read 1.6 < 1.6
            value = _num(record["value"], 8)
        return f"{self.measure} {value} {op} {threshold} ({self.setting})"


def _num(x: float | None, digits: int = 4) -> str:
    return "none" if x is None else f"{x:.{digits}g}"


def _setting(path: str) -> Callable[[Recipe], float]:
    return lambda recipe: setting(recipe, path)


def _declare(*gates: Gate) -> dict[str, Gate]:
    return {g.name: g for g in gates}


def _faces(recipe: Recipe) -> bool:
    return recipe.targets.face.required


def _picture(recipe: Recipe) -> bool:
    return recipe.targets.face.required and recipe.targets.picture.check


def _learned(section: str, personalized: bool = False) -> Callable[[Recipe], bool]:
    def on(recipe: Recipe) -> bool:
        cfg = setting(recipe, f"{section}.speech_quality")
        return cfg.backend == "dnsmos" and (cfg.personalized or not personalized)
    return on


def _speech_gates(section: str, prefix: str) -> list[Gate]:
    """The learned speech-quality floors of a section (`targets` or `references`), columns `dnsmos_*`."""
    q = f"{section}.speech_quality"
    return [Gate(f"{prefix}{m}", section, f"DNSMOS {label}", ">=", f"{q}.min_{m}", _setting(f"{q}.min_{m}"), fails,
                 0.0, f"dnsmos_{m}", applies=_learned(section, m == "povrl"))
            for m, label, fails in (("ovrl", "OVRL", "poor speech quality"), ("sig", "SIG", "distorted speech"),
                                    ("bak", "BAK", "noise or music behind the voice"),
                                    ("povrl", "personalized OVRL", "another voice under the speaker"))]


TARGET_GATES = _declare(
    Gate("speech_ratio", "targets", "speech ratio", ">=", "targets.min_speech_ratio",
         _setting("targets.min_speech_ratio"), "the speaker talks too little", 1e-6, "speech_ratio"),
    Gate("other_speech", "targets", "others' speech (s)", "<=", "targets.max_other_speech_s",
         _setting("targets.max_other_speech_s"), "someone else talks", 1e-9),
    Gate("face", "targets", "share of sampled frames with exactly one face", ">=", "targets.face.min_face_ratio",
         _setting("targets.face.min_face_ratio"), "no face, or several", 1e-9, "face_ratio", applies=_faces),
    Gate("crop", "targets", "tracked frames whose face leaves the centre crop", "<=", "targets.crop center",
         lambda _: 0.0, "the face leaves the centre crop",
         applies=lambda r: r.targets.face.required and r.targets.crop == "center"),
    Gate("upscale", "targets", "enlargement of the source by the output", "<=", "targets.picture.max_upscale",
         _setting("targets.picture.max_upscale"), "the face is too small in the source", 0.0, "upscale",
         applies=_picture),
    Gate("sharpness", "targets", "face sharpness", ">=", "targets.picture.min_sharpness",
         _setting("targets.picture.min_sharpness"), "the face is out of focus", 0.0, "face_sharpness",
         applies=_picture),
    *(Gate(axis, "targets", f"head {axis} (degrees, either way)", "<=", f"targets.picture.max_{axis}_deg",
           _setting(f"targets.picture.max_{axis}_deg"), f"the head is turned too far ({axis})", 0.0, f"head_{axis}",
           absolute=True, applies=_picture) for axis in ("yaw", "pitch", "roll")),
    Gate("burned_text", "targets", "share of searched frames with overlay text", "<=",
         "targets.picture.max_text_fraction", _setting("targets.picture.max_text_fraction"),
         "burned-in text (subtitles, captions)", 1e-9, "text_fraction",
         applies=lambda r: _picture(r) and r.targets.picture.text != "off"),
    Gate("active_speaker", "targets", "active-speaker score", ">=", "targets.active_speaker.min_score",
         lambda r: r.targets.active_speaker.threshold, "the face does not speak with the voice", 0.0, "sync_score",
         applies=lambda r: r.targets.face.required and r.targets.active_speaker.check),
    Gate("sync_offset", "targets", "sync offset (frames, either way)", "<=",
         "targets.active_speaker.max_offset_frames", _setting("targets.active_speaker.max_offset_frames"),
         "face and voice are out of sync", 0.0, "sync_offset", absolute=True,
         applies=lambda r: r.targets.face.required and r.targets.active_speaker.check),
    *_speech_gates("targets", "speech_"),
    Gate("dominant_face", "targets", "share of the identity's targets showing its dominant face", ">=",
         "targets.face_identity.min_dominant_share", _setting("targets.face_identity.min_dominant_share"),
         "the identity has no dominant face", 1e-9,
         applies=lambda r: r.targets.face.required and r.targets.face_identity.check),
    Gate("face_identity", "targets", "face distance to the identity's dominant face", "<=",
         "targets.face_identity.max_distance", _setting("targets.face_identity.max_distance"),
         "the face is not the voice's", 0.0, "face_distance",
         applies=lambda r: r.targets.face.required and r.targets.face_identity.check),
)
"""The target gates, in the order a window meets them."""

REFERENCE_GATES = _declare(
    Gate("max_other_speech_s", "references", "others' speech (s)", "<=", "references.max_other_speech_s",
         _setting("references.max_other_speech_s"), "someone else talks", 1e-9),
    Gate("min_speech_ratio", "references", "speech ratio", ">=", "references.min_speech_ratio",
         _setting("references.min_speech_ratio"), "the speaker talks too little", 1e-6, "speech_ratio"),
    Gate("min_lufs", "references", "loudness (LUFS)", ">=", "references.min_lufs", _setting("references.min_lufs"),
         "too quiet", 0.0, "lufs"),
    Gate("max_lufs", "references", "loudness (LUFS)", "<=", "references.max_lufs", _setting("references.max_lufs"),
         "too loud", 0.0, "lufs"),
    Gate("max_clipped_fraction", "references", "clipped fraction", "<=", "references.max_clipped_fraction",
         _setting("references.max_clipped_fraction"), "clipped", 0.0, "clipped_fraction"),
    Gate("max_peak_dbfs", "references", "sample peak (dBFS)", "<=", "references.max_peak_dbfs",
         _setting("references.max_peak_dbfs"), "peaks too high", 0.0, "peak_dbfs"),
    Gate("min_snr_db", "references", "SNR (dB)", ">=", "references.min_snr_db", _setting("references.min_snr_db"),
         "too noisy", 0.0, "snr_db"),
    *_speech_gates("references", "min_"),
)
"""The reference gates, in the order a candidate window meets them (it counts under the first it fails)."""


def required_gates(gates: Mapping[str, Gate], recipe: Recipe) -> list[str]:
    """The gates the recipe turns on, in order: every kept row carries a passed record of each."""
    return [name for name, g in gates.items() if g.applies(recipe)]


GATES: dict[str, Gate] = {**TARGET_GATES, **REFERENCE_GATES}


def first_failed(records: Iterable[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """The first record that did not pass, or None."""
    return next((r for r in records or () if not r["passed"]), None)


def describe(record: Mapping[str, Any]) -> str:
    gate = GATES.get(record["name"])
    if gate is None:  # a record of a gate this version does not declare
        return f"gate {record['name']}: {_num(record['value'])} against {_num(record['threshold'])}"
    return gate.describe(record)


def record_problems(records: list[Mapping[str, Any]] | None, required: Iterable[str], recipe: Recipe,
                    subject: str, row: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with a kept row's gate records: a required gate without a record, a record that did not
    pass, whose verdict does not follow from its value and threshold, whose threshold is not the recipe's, or
    (given the row) whose value is not what the row's own column says."""
    by_name = {r["name"]: r for r in records or ()}
    problems = [f"{subject}: no record of gate {name}" for name in required if name not in by_name]
    for name, r in by_name.items():
        gate = GATES.get(name)
        if gate is None:
            problems.append(f"{subject}: a record of an unknown gate {name!r}")
            continue
        if row is not None and gate.column is not None:
            problems += _column_problems(gate, r, row.get(gate.column), subject)
        want = float(gate.threshold_of(recipe))
        if r["threshold"] != want:
            problems.append(f"{subject}: gate {name} was decided at {r['threshold']}, the recipe says {want} "
                            f"({gate.setting})")
        if r["passed"] != gate.passes(r["value"], r["threshold"]):
            problems.append(f"{subject}: gate {name} says passed={r['passed']} for {gate.describe(r)}")
        elif not r["passed"]:
            problems.append(f"{subject}: kept, but fails {gate.describe(r)}")
    return problems


def _column_problems(gate: Gate, record: Mapping[str, Any], column: float | None, subject: str) -> list[str]:
    if column is None:
        return [f"{subject}: gate {gate.name} recorded {_num(record['value'])}, but {gate.column} is empty"]
    value = abs(column) if gate.absolute else column
    # Columns may be stored rounded (distances to 4 decimals): within that, they agree.
    if record["value"] is None or abs(value - record["value"]) > 1e-4 * max(1.0, abs(value)):
        return [f"{subject}: gate {gate.name} recorded {_num(record['value'])}, {gate.column} says {column}"]
    return []


# ------------------------------------------------------------------------------------------- rejections


def failure(subject: str | os.PathLike, reason: str) -> str:
    """The error text of a row: the file (or item) first, then why."""
    return f"{subject}: {reason}"


# A file name, or an id built from a video id (16 hex digits), before the reason.
_SUBJECT = re.compile(r"^(?:.*?\.\w{2,5}|[0-9a-f]{16}-[^:\s]+): ")
_DETAIL = re.compile(r" \([^()]*\)$")
_ID = re.compile(r"\b(id|label)-\S+|\b[0-9a-f]{16}(-[^\s:,;]+)?")
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(\.\d+)?")


def reason_of(error: str | None, subject: str | None = None) -> str:
    """A row's error without its subject (`failure`'s first part): `subject` when known (else up to the first
    `: `), or, with none given, a leading file name or id built from a video id."""
    if not error:
        return ""
    if subject is None:
        return _SUBJECT.sub("", error, count=1)
    if subject and error.startswith(subject + ": "):
        return error[len(subject) + 2:]
    return error.split(": ", 1)[1] if ": " in error else error


def rejection(error: str | None, gates: list[Mapping[str, Any]] | None = None) -> str:
    """What a rejected row groups under: the gate it failed (its name and meaning), else its error's reason
    without the subject, trailing (details), ids and numbers (numbers as N)."""
    failed = first_failed(gates)
    if failed is not None:
        gate = GATES.get(failed["name"])
        return f"{gate.fails if gate else 'a gate this version does not declare'} ({failed['name']})"
    return _reason_group(error or "no reason")


@functools.lru_cache(maxsize=65536)
def _reason_group(error: str) -> str:
    return _NUMBER.sub("N", _ID.sub("<id>", _DETAIL.sub("", reason_of(error))))
