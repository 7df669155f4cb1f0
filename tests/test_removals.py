"""Take-down: removing an identity leaves no trace of it in manifests, partition state or shards; a half-done
take-down (killed before its rebuild) is reported by verify and finished by the next build; later builds
with new videos keep the person out (a new clip of their voice, a re-encoded copy of a removed clip) and
keep everybody else in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import polars as pl
import pytest

from ltxa_data.cli import main
from ltxa_data.commands.remove import Request, parse_requests, resolve
from ltxa_data.corpus.generate import generate_corpus
from ltxa_data.pipeline import build
from ltxa_data.recipe import CorpusConfig, Recipe, RecipeError, load_recipe
from ltxa_data.removals import Removals, append
from ltxa_data.reporting.verify import check_removals, verify_build
from ltxa_data.storage import read_frame

from .conftest import copy_build, recipe_dict, write_recipe


def _identity_of(recipe: Recipe, speaker: str) -> str:
    """The identity most of `speaker`'s clips (ground truth folder `speaker/`) were given."""
    videos = read_frame(recipe.manifests_dir, "videos").select("video_id", "rel_path")
    ids = read_frame(recipe.manifests_dir, "identities", ok_only=True).join(videos, on="video_id")
    mine = ids.filter(pl.col("rel_path").str.starts_with(f"{speaker}/") & ~pl.col("rel_path").str.contains("dialog"))
    return mine.group_by("identity_id").len().sort("len", descending=True)["identity_id"][0]


@pytest.fixture(scope="module")
def taken(built: Recipe, tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, str, dict]:
    """A copy of the build whose take-down of spk0's identity was killed before its rebuild: (recipe, the
    identity, its pairs and videos before)."""
    recipe = copy_build(built, tmp_path_factory.mktemp("takedown"))
    identity = _identity_of(recipe, "spk0")
    pairs = read_frame(recipe.manifests_dir, "pairs", ok_only=True)
    before = {"pairs": pairs, "videos": read_frame(recipe.manifests_dir, "videos", ok_only=True)}
    # Killed right after recording the removal, before its rebuild: verify names what is left.
    append(recipe, resolve(recipe, [Request("identity", identity)], "asked to be removed"))
    assert any("still names removed items" in p for p in check_removals(recipe))
    assert any("derives from a removed video" in p for p in check_removals(recipe))
    return recipe, identity, before


def test_removing_an_identity_leaves_no_trace(taken: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    recipe, identity, before = taken
    # Running it again finishes the job (the same request is recorded once).
    assert main(["remove", str(recipe.base_dir / "recipe.yaml"), "--identity", identity, "--reason",
                 "asked to be removed", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "no trace of the removed items remains" in out
    removals = Removals.load(recipe)
    named = removals.table.filter(pl.col("how") == "named")
    assert named["request"].unique().to_list() == [f"identity {identity}"]
    assert named["voice_embeddings"].null_count() == 0 and named["fp_picture"].null_count() == 0
    gone = set(named["video_id"].to_list())
    assert gone and gone <= set(before["videos"]["video_id"].to_list())
    assert check_removals(recipe) == [] and verify_build(recipe, check_media=False) == []
    pairs = read_frame(recipe.manifests_dir, "pairs")
    assert identity not in pairs["identity_id"].to_list()
    assert not set(pairs["target_video_id"].to_list()) & gone
    assert not {v for refs in pairs["reference_video_ids"].to_list() for v in refs} & gone
    # Everybody else's samples stay (those whose only references were in removed videos may go).
    others = before["pairs"].filter((pl.col("identity_id") != identity) & ~pl.col("target_video_id").is_in(list(gone)))
    kept = set(pairs.filter(pl.col("status") == "ok")["key"].to_list())
    assert len(kept & set(others["key"].to_list())) >= 0.7 * others.height > 0
    shards = read_frame(recipe.manifests_dir, "shards", ok_only=True)
    assert set(shards["key"].to_list()) == kept


def test_later_builds_keep_the_person_out(taken: tuple, corpus: Path, tmp_path: Path) -> None:
    recipe, identity, _ = taken
    removals = Removals.load(recipe)
    extra = tmp_path / "new"
    generate_corpus(tmp_path / "fresh", CorpusConfig(seed=7, speakers=4, clips_per_speaker=1, two_speaker_clips=0,
                                                     scene_cut_clips=0, short_clips=0, listener_clips=0, still_clips=0,
                                                     dub_clips=0, lipsync_clips=0, phone_clips=0))
    extra.mkdir()
    (extra / "spk0_new.mp4").write_bytes((tmp_path / "fresh/spk0/clip_00.mp4").read_bytes())
    (extra / "spk3_new.mp4").write_bytes((tmp_path / "fresh/spk3/clip_00.mp4").read_bytes())
    removed_clip = removals.table.filter(pl.col("path").str.contains("/clip_"))["path"][0]
    # Cropped by 5 % a side, its short side 300 px, trimmed, re-encoded.
    shrink = "crop=trunc(iw*0.45)*2:trunc(ih*0.45)*2,scale='if(gt(iw,ih),-2,300)':'if(gt(iw,ih),300,-2)'"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", "0.7", "-i", removed_clip, "-vf", shrink,
                    "-c:v", "libx264", "-crf", "30", "-c:a", "aac", "-b:a", "48k", str(extra / "reupload.mp4")],
                   check=True)
    # New videos, and a changed setting: the removal still holds.
    data = recipe_dict(corpus, input={"paths": [str(corpus), str(extra)]}, identify={"similarity_threshold": 0.84})
    later = load_recipe(write_recipe(recipe.base_dir, data))
    build(later, progress=False)
    rows = Removals.load(later).table
    how = dict(rows.select(pl.col("path").str.split("/").list.last(), "how").iter_rows())
    assert how.get("spk0_new.mp4") == "voice" and how.get("reupload.mp4") == "copy", how
    assert set(rows.filter(pl.col("how") != "named")["request"].to_list()) == {f"identity {identity}"}
    videos = read_frame(later.manifests_dir, "videos")
    assert "spk3_new.mp4" in videos["rel_path"].to_list()  # somebody else's new clip is in
    assert not {"spk0_new.mp4", "reupload.mp4"} & set(videos["rel_path"].to_list())
    assert check_removals(later) == [] and verify_build(later, check_media=False) == []


def test_requests_that_name_nothing_are_refused(built: Recipe, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="id-nobody: no such identity"):
        resolve(built, [Request("identity", "id-nobody")], "typo")
    with pytest.raises(RecipeError, match=r"video nowhere\.mp4: no such file"):
        resolve(built, [Request("video", "nowhere.mp4")], "typo")
    with pytest.raises(RecipeError, match="label nobody: no video or identity carries this label"):
        resolve(built, [Request("label", "nobody")], "typo")
    with pytest.raises(RecipeError, match=r"requests.txt:2: expected `identity ID`"):
        parse_requests(["# who", "someone id-1"], "requests.txt")
    assert parse_requests(["identity id-1", "", "video a b.mp4"], "f") == [Request("identity", "id-1"),
                                                                         Request("video", "a b.mp4")]
    assert main(["remove", str(built.base_dir / "recipe.yaml"), "--reason", "x"]) == 2  # nothing named
