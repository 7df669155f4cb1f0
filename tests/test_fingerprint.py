"""Perceptual fingerprints: copies of a clip made by FFmpeg (re-encoded, rescaled, cropped, trimmed, another
frame rate, all at once) are matched to it and grouped with it; other clips of the same drawn speaker (same
face, same voice, other words) are not."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ltxa_data.analysis.fingerprint as fingerprint
from ltxa_data.analysis.fingerprint import (
    FINGERPRINT_FIELDS,
    Fingerprint,
    duplicate_groups,
    duplicate_pairs,
    is_duplicate,
    match,
    video_fingerprint,
)
from ltxa_data.analysis.fingerprint_store import StoredFingerprints
from ltxa_data.corpus.generate import load_ground_truth
from ltxa_data.recipe import Recipe
from ltxa_data.stages import FingerprintsStage
from ltxa_data.storage import read_frame

from .conftest import copy_build

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac"]
# kind: (ffmpeg arguments before -i, after -i, where the copy's t=0 falls in the original)
COPIES: dict[str, tuple[list[str], list[str], float]] = {
    "reencode": ([], ["-c:v", "libx264", "-preset", "veryfast", "-crf", "36", "-c:a", "aac", "-b:a", "48k"], 0.0),
    "vp9_opus": ([], ["-c:v", "libvpx-vp9", "-crf", "40", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
                      "-c:a", "libopus", "-b:a", "32k"], 0.0),
    "rescale": ([], ["-vf", "scale=trunc(iw/4)*2:-2", *X264], 0.0),
    "crop": ([], ["-vf", "crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2", *X264], 0.0),
    "trim": (["-ss", "1.55"], ["-t", "5.0", *X264], 1.55),
    "fps": ([], ["-vf", "fps=30000/1001", *X264], 0.0),
    "combined": (["-ss", "1.3"], ["-t", "4.5", "-vf", "crop=trunc(iw*0.86/2)*2:trunc(ih*0.86/2)*2,"
                                  "scale=trunc(iw/3)*2:-2,fps=25", "-c:v", "libx265", "-crf", "30", "-x265-params",
                                  "log-level=error", "-c:a", "aac", "-b:a", "64k"], 1.3),
}
ORIGINALS = ("spk0/clip_00.mp4", "spk1/cut_00.mp4", "spk0/phone_00.mp4")  # phone: stored sideways, rotation 90


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def copies(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(original, kind) -> the copy (the original's rotation applied by FFmpeg: stored upright)."""
    out = tmp_path_factory.mktemp("copies")
    made = {}
    for o, orig in enumerate(ORIGINALS):
        for kind, (before, after, _) in COPIES.items():
            dest = out / f"{o}_{kind}.{'webm' if kind == 'vp9_opus' else 'mp4'}"
            _ffmpeg(*before, "-i", str(corpus / orig), *after, str(dest))
            made[orig, kind] = dest
    return made


@pytest.fixture(scope="module")
def prints(corpus: Path, copies: dict[tuple[str, str], Path]) -> dict[str, Fingerprint]:
    """Every corpus clip's and copy's fingerprint, by name (corpus-relative path, or `original:kind`)."""
    out = {str(p.relative_to(corpus)): video_fingerprint(p) for p in sorted(corpus.rglob("*.mp4"))}
    out.update({f"{orig}:{kind}": video_fingerprint(p) for (orig, kind), p in copies.items()})
    return out


@pytest.mark.parametrize("kind", list(COPIES))
def test_copies_match_their_original(prints: dict[str, Fingerprint], kind: str) -> None:
    for orig in ORIGINALS:
        m = match(prints[orig], prints[f"{orig}:{kind}"])
        assert is_duplicate(m) and m.sound is not None, (orig, kind, m)
        # Found at the right place, to the nearest sound hop (0.125 s).
        assert m.offset_s == pytest.approx(COPIES[kind][2], abs=0.0625 + 1e-6), (orig, kind, m)
        assert m.coverage == 1.0
        # The picture agrees too (other clips of a drawn speaker: <= 0.87), crops at one pair of scales.
        assert m.picture >= 0.88, (orig, kind, m)
        # Either way round.
        assert is_duplicate(match(prints[f"{orig}:{kind}"], prints[orig]))


def test_groups_are_the_copies(corpus: Path, prints: dict[str, Fingerprint]) -> None:
    """Among all clips and copies, the groups are exactly each original with its copies: other clips of one
    speaker (the same drawn face and voice, other words) stay apart. The result does not depend on order."""
    names = sorted(prints)
    groups = duplicate_groups(names, [prints[n] for n in names])
    planted = _corpus_copies(corpus)  # the corpus's own re-uploads
    expected = {orig: {orig, *(f"{orig}:{kind}" for kind in COPIES)} for orig in ORIGINALS}
    for copy, orig in planted.items():
        expected.setdefault(orig, {orig}).add(copy)
    assert groups == sorted(sorted(g) for g in expected.values())
    shuffled = names.copy()
    random.Random(0).shuffle(shuffled)
    assert duplicate_groups(shuffled, [prints[n] for n in shuffled]) == groups


def _corpus_copies(corpus: Path) -> dict[str, str]:
    """The corpus's re-uploads: copy -> original (corpus-relative paths)."""
    return {c["path"]: c["copy_of"] for c in load_ground_truth(corpus)["clips"] if c["kind"] == "copy"}


def test_same_speaker_other_words_are_not_copies(corpus: Path, prints: dict[str, Fingerprint]) -> None:
    clips = [n for n in prints if ":" not in n]
    planted = {frozenset(p) for p in _corpus_copies(corpus).items()}
    for a in clips:
        for b in clips:
            if a < b and a.split("/")[0] == b.split("/")[0] and frozenset((a, b)) not in planted:
                m = match(prints[a], prints[b])
                assert not is_duplicate(m), (a, b, m)


def test_same_picture_other_words(corpus: Path, tmp_path: Path) -> None:
    """A clip's own picture over the same voice saying other words (the hardest look-alike: everything on
    screen is the same) is not a copy of it; it is a copy of the clip whose speech it carries."""
    a, b = corpus / "spk0/clip_00.mp4", corpus / "spk0/clip_01.mp4"
    mixed = tmp_path / "mixed.mp4"
    _ffmpeg("-i", str(a), "-i", str(b), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
            str(mixed))
    fa, fb, fm = video_fingerprint(a), video_fingerprint(b), video_fingerprint(mixed)
    same_picture = match(fa, fm)
    assert same_picture.picture > 0.95 and not is_duplicate(same_picture), same_picture
    assert is_duplicate(match(fb, fm))


def test_silent_copy_needs_a_changing_picture(corpus: Path, tmp_path: Path, prints: dict[str, Fingerprint]) -> None:
    """Without sound the picture decides, and only where it pins the offset: the clip with a scene cut does;
    a static shot matches every clip of its framing anywhere, so its silent copy is not called a copy."""
    for orig, expected in (("spk1/cut_00.mp4", True), ("spk1/clip_00.mp4", False)):
        silent = tmp_path / f"silent_{expected}.mp4"
        _ffmpeg("-ss", "1.0", "-i", str(corpus / orig), "-an", *X264[:6], str(silent))
        fp = video_fingerprint(silent)
        assert fp.sound is None
        m = match(prints[orig], fp)
        assert m.sound is None and is_duplicate(m) is expected, (orig, m)


def test_manifest_row_round_trip(tmp_path: Path, prints: dict[str, Fingerprint]) -> None:
    names = sorted(prints)[:4]
    schema = pa.schema([pa.field(name, t) for name, t, _ in FINGERPRINT_FIELDS])
    pq.write_table(pa.Table.from_pylist([prints[n].to_row() for n in names], schema=schema), tmp_path / "fp.parquet")
    back = [Fingerprint.from_row(r) for r in pl.read_parquet(tmp_path / "fp.parquet").iter_rows(named=True)]
    for n, fp in zip(names, back, strict=True):
        assert (fp.picture == prints[n].picture).all() and (fp.vectors == prints[n].vectors).all()
        assert (fp.sound == prints[n].sound).all() and fp.step_s == prints[n].step_s
    assert duplicate_pairs(back) == duplicate_pairs([prints[n] for n in names])


@pytest.fixture(scope="module")
def real_speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two clips of real speech (pyannote.audio's two-speaker sample: 6.5-18 s and 18-30 s, the same two people
    saying other things) over a real photograph (matplotlib's), and copies of the first."""
    from ltxa_data.cli import pyannote_sample_dir
    from ltxa_data.corpus.faces import real_photo

    out = tmp_path_factory.mktemp("real")
    wav = pyannote_sample_dir() / "sample.wav"
    clips = {"a": (6.5, 11.5), "b": (18.0, 12.0)}
    made = {}
    for name, (start, length) in clips.items():
        made[name] = out / f"{name}.mp4"
        _ffmpeg("-loop", "1", "-framerate", "25", "-i", str(real_photo()), "-ss", str(start), "-t", str(length), "-i",
                str(wav), "-t", str(length), "-vf", "scale=480:-2,format=yuv420p", *X264, str(made[name]))
    for kind in ("reencode", "crop", "trim", "fps", "combined", "vp9_opus"):
        before, after, _ = COPIES[kind]
        made[kind] = out / f"a_{kind}.{'webm' if kind == 'vp9_opus' else 'mp4'}"
        _ffmpeg(*before, "-i", str(made["a"]), *after, str(made[kind]))
    return made


def test_copies_of_real_speech_match_and_other_words_of_the_same_people_do_not(real_speech: dict[str, Path]) -> None:
    prints = {k: video_fingerprint(p) for k, p in real_speech.items()}
    for kind in ("reencode", "crop", "trim", "fps", "combined", "vp9_opus"):
        m = match(prints["a"], prints[kind])
        assert is_duplicate(m) and m.sound is not None and m.sound >= 0.78, (kind, m)
    other = match(prints["a"], prints["b"])
    assert not is_duplicate(other) and other.sound is not None and other.sound < 0.68, other
    assert duplicate_groups(list(prints), list(prints.values())) == [
        sorted(["a", "reencode", "crop", "trim", "fps", "combined", "vp9_opus"])]



def test_the_scenes_decode_gives_the_fingerprints_their_picture(built: Recipe, prints: dict[str, Fingerprint],
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """One decode per video: the scenes stage leaves every ok video's picture hashes, the fingerprints stage
    reads them and decodes no picture itself (its decoder is made to fail here), and the fingerprints equal a
    video's own decode, the sideways phone clip included. A picture file gone: the video is decoded again."""
    recipe = copy_build(built, tmp_path)
    m = recipe.manifests_dir
    videos = read_frame(m, "videos", ok_only=True)
    scenes = read_frame(m, "scenes", ok_only=True)
    assert scenes.height == videos.height and scenes["picture_file"].null_count() == 0
    rel = dict(zip(videos["video_id"], videos["rel_path"], strict=True))

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fingerprints stage decoded a picture")

    stage = FingerprintsStage(recipe)
    parts = stage.plan({"videos": read_frame(m, "videos"), "scenes": read_frame(m, "scenes")})
    assert ORIGINALS[2] in {rel[v] for p in parts for v in p.data["videos"]["video_id"]}
    with monkeypatch.context() as patch:
        patch.setattr(fingerprint, "_picture", no_decode)
        rows = [r for p in parts for r in stage.process(p).rows]
    assert len(rows) == videos.height and all(r["status"] == "ok" for r in rows)
    stored = StoredFingerprints(recipe.output_dir, pl.DataFrame(rows).select("file", "row"))
    for r, fp in zip(rows, stored, strict=True):
        own = prints.get(rel[r["video_id"]]) or video_fingerprint(Path(recipe.input.paths[0]) / rel[r["video_id"]])
        assert np.array_equal(fp.picture, own.picture) and np.allclose(fp.vectors, own.vectors), rel[r["video_id"]]

    part = parts[0]
    part.data["videos"] = part.data["videos"].head(1).with_columns(picture_file=pl.lit("scenes/gone.arrow"))
    [again] = stage.process(part).rows
    assert again["status"] == "ok" and again["steps"] == len(video_fingerprint(part.data["videos"]["path"][0]).picture)
