"""The whole pipeline on a generated corpus: invariants, media contract, identity quality, reruns."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import av
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset as wds

from ltxa_data.cli import main
from ltxa_data.corpus.generate import load_ground_truth
from ltxa_data.corpus.scoring import score_identities, true_speaker_of_voices
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, load_recipe
from ltxa_data.reporting.verify import verify_build
from ltxa_data.schemas import TABLES
from ltxa_data.storage import read_frame, table_path

from .conftest import SMALL_CORPUS, copy_build, recipe_dict, write_recipe


def frames(recipe: Recipe, name: str, ok: bool = True) -> pl.DataFrame:
    return read_frame(recipe.manifests_dir, name, ok_only=ok)


def test_every_table_is_written_and_every_row_has_a_status_and_reason(built: Recipe) -> None:
    for name in TABLES:
        df = frames(built, name, ok=False)
        assert df.height > 0 or (name == "attributes" and not built.attributes), name  # no attribute, no rows
        assert set(df["status"].unique()) <= {"ok", "skipped", "failed"}
        not_ok = df.filter(pl.col("status") != "ok")
        assert not_ok.filter(pl.col("error").is_null() | (pl.col("error") == "")).height == 0, name


def test_verify_passes_on_the_build(built: Recipe) -> None:
    assert verify_build(built) == []
    assert main(["verify", str(built.base_dir / "recipe.yaml")]) == 0


def test_identity_grouping_matches_ground_truth(built: Recipe, corpus: Path) -> None:
    truth = true_speaker_of_voices(frames(built, "turns", ok=False), frames(built, "videos"), load_ground_truth(corpus))
    score = score_identities(frames(built, "identities"), truth)
    assert score.voices >= 14
    assert score.true_identities == 4
    assert score.purity == 1.0
    assert score.ari > 0.95


def test_dialog_clips_get_two_local_speakers(built: Recipe, corpus: Path) -> None:
    gt = load_ground_truth(corpus)
    videos = frames(built, "videos")
    voices = frames(built, "voices")
    for clip in (c for c in gt["clips"] if c["kind"] == "dialog"):
        vid = videos.filter(pl.col("rel_path") == clip["path"])["video_id"].item()
        assert voices.filter(pl.col("video_id") == vid).height == 2, clip["path"]


def test_scene_cuts_match_the_ground_truth_and_no_target_crosses_one(built: Recipe, corpus: Path) -> None:
    truth = {c["path"]: c for c in load_ground_truth(corpus)["clips"]}
    videos = frames(built, "videos").select("video_id", "rel_path")
    scenes = frames(built, "scenes").join(videos, on="video_id")
    assert scenes.height == videos.height
    cut_clips = 0
    for r in scenes.iter_rows(named=True):
        expected = truth[r["rel_path"]]["cuts"]
        cut_clips += bool(expected)
        assert len(r["cut_s"]) == len(expected) and r["num_shots"] == len(expected) + 1, r["rel_path"]
        frame = 1 / truth[r["rel_path"]]["fps"]
        assert all(abs(a - b) <= frame + 1e-6 for a, b in zip(r["cut_s"], expected, strict=True)), r["rel_path"]
    assert cut_clips >= 2, "the corpus has a cut clip and dialog clips whose shot changes speaker"
    targets = frames(built, "targets").join(scenes.select("video_id", "cut_s"), on="video_id")
    for t in targets.iter_rows(named=True):
        last = t["start_s"] + (t["num_frames"] - 1) / 25
        assert not any(t["start_s"] < c <= last for c in t["cut_s"]), t["target_id"]


def test_splits_hold_out_identities_and_references_come_from_other_videos(built: Recipe) -> None:
    pairs, refs = frames(built, "pairs"), frames(built, "references")
    assert pairs.height > 0
    assert pairs.group_by("identity_id").agg(pl.col("split").n_unique())["split"].max() == 1
    assert set(pairs["split"].unique()) <= {"train", "val", "test"}
    ref_video = dict(zip(refs["reference_id"], refs["video_id"], strict=True))
    ref_ident = dict(zip(refs["reference_id"], refs["identity_id"], strict=True))
    for p in pairs.iter_rows(named=True):
        for r in p["reference_ids"]:
            assert ref_video[r] != p["target_video_id"]
            assert ref_ident[r] == p["identity_id"]


def test_targets_are_frame_exact_windows_where_one_speaker_talks(built: Recipe) -> None:
    targets, videos = frames(built, "targets"), frames(built, "videos")
    turns = frames(built, "turns")
    duration = dict(zip(videos["video_id"], videos["duration_s"], strict=True))
    for t in targets.iter_rows(named=True):
        assert t["num_frames"] == 121 and t["start_s"] == t["start_frame"] / 25
        assert t["start_s"] + 4.84 <= duration[t["video_id"]] + 1e-6
        speaker = t["voice_id"].rsplit("-", 1)[1]
        others = turns.filter((pl.col("video_id") == t["video_id"]) & (pl.col("speaker") != speaker))
        for o in others.iter_rows(named=True):
            assert o["end_s"] <= t["start_s"] + 1e-6 or o["start_s"] >= t["start_s"] + 4.84 - 1e-6
        assert t["speech_ratio"] >= 0.6


def test_webdataset_iterates_every_shard_with_the_media_contract(built: Recipe) -> None:
    index = frames(built, "shards")
    urls = sorted(str(built.shards_dir / s) for s in index["shard"].unique())
    assert len(urls) >= 2
    seen = {}
    for s in wds.WebDataset(urls, shardshuffle=False):
        seen[s["__key__"]] = s
    assert sorted(seen) == sorted(index["key"])
    sample = seen[sorted(seen)[0]]
    meta = json.loads(sample["json"])
    with av.open(io.BytesIO(sample["mp4"])) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        rate = c.streams.video[0].average_rate
    assert len(decoded) == 121 and decoded[0].shape == (512, 512, 3) and rate == 25
    audio, sr = sf.read(io.BytesIO(sample["wav"]))
    assert sr == 16000 and audio.shape == (77440, 2)
    ref, sr = sf.read(io.BytesIO(sample["ref0.wav"]))
    assert sr == 16000 and ref.shape == (56000, 2)
    assert np.abs(ref).max() > 0.01, "the reference carries speech"
    assert meta["references"][0]["video_id"] != meta["video_id"]


def test_index_offsets_point_at_the_samples(built: Recipe) -> None:
    index = frames(built, "shards")
    for r in index.iter_rows(named=True):
        with open(built.shards_dir / r["shard"], "rb") as f:
            f.seek(r["offset"])
            header = tarfile.TarInfo.frombuf(f.read(512), "utf-8", "surrogateescape")
        assert header.name.startswith(r["key"] + ".")
        assert header.name in r["members"]


def test_no_op_rerun_does_no_work(built: Recipe) -> None:
    before = {n: table_path(built.manifests_dir, n).read_bytes() for n in TABLES}
    reports = build(built, progress=False)
    assert [r.ran for r in reports] == [0] * len(reports)
    assert before == {n: table_path(built.manifests_dir, n).read_bytes() for n in TABLES}


def test_changing_one_setting_reruns_only_the_stages_it_affects(built: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(built, tmp_path / "crf", shard={"video_crf": 30})
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["shard"] > 0
    assert all(v == 0 for k, v in ran.items() if k != "shard"), ran
    assert verify_build(recipe) == []

    recipe = copy_build(built, tmp_path / "refs", references={"max_per_video": 1}, shard={"video_crf": 30})
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["references"] > 0
    for untouched in ("scan", "diarize", "embed", "identify", "targets"):
        assert ran[untouched] == 0, (untouched, ran)
    assert frames(recipe, "references").group_by("voice_id").len()["len"].max() == 1
    assert verify_build(recipe) == []

    # Far enough from 4 that the shard counts are not kept (`bucket_count`): samples go to hash buckets, twice
    # as many as samples or fewer, so a shard holds one or two on average.
    recipe = copy_build(built, tmp_path / "layout", shard={"samples_per_shard": 1})
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["shard"] > 0 and ran["pairs"] == 0
    assert verify_build(recipe) == [], "re-sharding leaves no stale or missing tar"
    per_shard = frames(recipe, "shards").group_by("shard").len()["len"]
    assert per_shard.len() > frames(built, "shards")["shard"].n_unique() and per_shard.mean() <= 2


def test_adding_a_video_reruns_only_its_partitions_and_keeps_ids_and_splits(
    built: Recipe, tmp_path: Path
) -> None:
    from ltxa_data.corpus.generate import make_bad_inputs

    extra = tmp_path / "extra"
    expected = make_bad_inputs(tmp_path / "bad", sorted(Path(built.input.paths[0]).rglob("clip_00.mp4"))[0])
    extra.mkdir()
    new_clip = next(n for n, k in expected.items() if k == "ok")
    (extra / new_clip).write_bytes((tmp_path / "bad" / new_clip).read_bytes())
    recipe = copy_build(built, tmp_path / "grow")
    data = recipe_dict(Path(built.input.paths[0]), quality=True)
    data["input"]["paths"].append(str(extra))
    recipe = load_recipe(write_recipe(tmp_path / "grow", data))

    reports = {r.stage: r for r in build(recipe, progress=False)}
    for stage in ("diarize", "embed", "targets", "references"):
        assert reports[stage].ran == 1 < reports[stage].partitions, (stage, reports[stage])
    old_ids, new_ids = frames(built, "identities"), frames(recipe, "identities")
    kept = old_ids.join(new_ids, on="voice_id", suffix="_new")
    assert kept.height == old_ids.height
    assert (kept["identity_id"] == kept["identity_id_new"]).all(), "existing identities keep their ids"
    added = new_ids.join(old_ids, on="voice_id", how="anti")
    assert added.height == 1 and added["identity_id"][0] in set(old_ids["identity_id"]), "spk0's new clip joins spk0"
    old_pairs, new_pairs = frames(built, "pairs"), frames(recipe, "pairs")
    both = old_pairs.join(new_pairs, on="key", suffix="_new")
    assert both.height == old_pairs.height and (both["split"] == both["split_new"]).all()
    assert verify_build(recipe) == []


def test_verify_names_violations(built: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(built, tmp_path / "bad")
    pairs_path = table_path(recipe.manifests_dir, "pairs")
    pairs = pq.read_table(pairs_path).to_pylist()
    victim = next(p for p in pairs if p["status"] == "ok")
    other_split = {"train": "val", "val": "test", "test": "train"}[victim["split"]]
    victim["split"] = other_split
    pq.write_table(pq.read_table(pairs_path).from_pylist(pairs, schema=pq.read_schema(pairs_path)), pairs_path)
    index = frames(recipe, "shards")
    shard = index["shard"][0]
    (recipe.shards_dir / shard).unlink()
    problems = verify_build(recipe)
    assert any(f"identity {victim['identity_id']} appears in splits" in p for p in problems), problems
    assert any(f"shard {shard}: in the index but missing on disk" in p for p in problems), problems
    assert main(["verify", str(recipe.base_dir / "recipe.yaml"), "--no-media"]) == 1


def test_status_reports_partitions_and_rows(built: Recipe, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(built.base_dir / "recipe.yaml")]) == 0
    out = capsys.readouterr().out
    videos_line = next(ln for ln in out.splitlines() if ln.startswith("scan "))
    assert videos_line.split()[1] == "videos", "each stage is named with the table it writes"
    n_videos = frames(built, "videos", ok=False).height
    assert f"{n_videos}" in videos_line and "/" in videos_line
    assert "shorter than a N s target" in out, "skip reasons are listed, grouped (numbers as N) as the report does"
    assert "the face does not speak with the voice (active_speaker)" in out, "gate rejections group under their gate"


def test_notebook_runs_on_a_build(built: Recipe, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "inspect_demo.ipynb").read_text())
    monkeypatch.setenv("LTXA_MANIFESTS", str(built.manifests_dir))
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "inspect_demo.ipynb", "exec"), scope)
    per_identity = scope["per_identity"]
    assert per_identity.height == frames(built, "identities")["identity_id"].n_unique()
    assert per_identity["samples"].sum() == frames(built, "pairs").height


def test_demo_command_generates_builds_verifies_and_scores(built: Recipe, tmp_path: Path, capsys) -> None:
    recipe = copy_build(built, tmp_path / "demo")
    data = recipe_dict(Path(recipe.input.paths[0]), quality=True)
    data["corpus"] = SMALL_CORPUS.model_dump(mode="json")
    path = write_recipe(tmp_path / "demo", data)
    assert main(["demo", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ran 0/" in out, "the corpus exists and the copy is built: nothing to redo"
    assert "verify: all invariants hold" in out
    assert "identity grouping vs ground truth: purity 1.000" in out
    assert f"targets: {frames(built, 'targets').height}" in out


def test_schemas_command_lists_every_table(capsys) -> None:
    assert main(["schemas"]) == 0
    out = capsys.readouterr().out
    for name, table in TABLES.items():
        assert out.count(f"{name}  (one row is") == 1
        assert all(col in out for col in table.columns)


def test_score_command_reports_identity_quality(built: Recipe, corpus: Path, tmp_path: Path, capsys) -> None:
    recipe_path = str(built.base_dir / "recipe.yaml")
    assert main(["score", "identities", recipe_path, "--truth", str(corpus / "ground_truth.json")]) == 0
    out = capsys.readouterr().out
    assert "adjusted Rand index: 1.0000" in out and "true identities: 4" in out
    gt = load_ground_truth(corpus)
    csv_path = tmp_path / "truth.csv"
    solo = [c for c in gt["clips"] if len(c["speakers"]) == 1]  # a CSV names each video's main speaker
    csv_path.write_text("video,identity\n" + "".join(f"{c['path']},{c['identity']}\n" for c in solo))
    assert main(["score", "identities", recipe_path, "--truth", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "purity: 1.0000" in out and "true identities: 4" in out


def _rewrite(path: Path, change) -> None:
    table = pq.read_table(path)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)


def test_verify_catches_each_broken_invariant(built: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(built, tmp_path / "broken")
    m = recipe.manifests_dir
    pair = frames(recipe, "pairs").row(0, named=True)
    ref_id = pair["reference_ids"][0]
    target = frames(recipe, "targets").row(0, named=True)

    def own_video(rows: list[dict]) -> None:  # the reference now claims the target's own video
        next(r for r in rows if r["reference_id"] == ref_id)["video_id"] = pair["target_video_id"]

    _rewrite(m / "references.parquet", own_video)

    def no_reason(rows: list[dict]) -> None:
        next(r for r in rows if r["status"] == "skipped")["error"] = None

    _rewrite(m / "targets.parquet", no_reason)

    turns = frames(recipe, "turns")
    clean = turns.filter(~pl.col("overlap")).row(0, named=True)
    intruder = turns.filter(pl.col("video_id") != clean["video_id"]).row(0, named=True)["turn_id"]

    def talk_over(rows: list[dict]) -> None:  # another speaker now talks inside a clean turn
        row = next(r for r in rows if r["turn_id"] == intruder)
        row.update(video_id=clean["video_id"], speaker="S9", start_s=clean["start_s"], end_s=clean["end_s"])

    _rewrite(m / "turns.parquet", talk_over)
    identities = frames(recipe, "identities")
    a = identities.row(0, named=True)
    b = identities.filter(pl.col("identity_id") != a["identity_id"]).row(0, named=True)

    def merge_one_video(rows: list[dict]) -> None:  # a second voice of video a joins a's identity
        row = next(r for r in rows if r["voice_id"] == b["voice_id"])
        row.update(video_id=a["video_id"], identity_id=a["identity_id"])

    _rewrite(m / "identities.parquet", merge_one_video)

    def cut_inside(rows: list[dict]) -> None:  # a cut now falls in the middle of the first target
        next(r for r in rows if r["video_id"] == target["video_id"])["cut_s"] = [target["start_s"] + 2.0]

    _rewrite(m / "scenes.parquet", cut_inside)
    shared = frames(recipe, "pairs").group_by("target_video_id").len().filter(pl.col("len") > 1)["target_video_id"][0]

    def move_one(rows: list[dict]) -> None:  # one of a video's samples moves to another split
        row = next(r for r in rows if r["target_video_id"] == shared)
        row["split"] = "test" if row["split"] != "test" else "val"

    _rewrite(m / "pairs.parquet", move_one)

    index = frames(recipe, "shards")
    victim = index.row(0, named=True)
    tar_path = recipe.shards_dir / victim["shard"]
    with tarfile.open(tar_path) as tar:
        members = [(m_, tar.extractfile(m_).read()) for m_ in tar]  # type: ignore[union-attr]
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            if info.name == f"{victim['key']}.mp4":
                with av.open(io.BytesIO(data)) as c:
                    short = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][:120]
                from ltxa_data.media import encode_video

                data = encode_video(np.stack(short), 25)
                info.size = len(data)
            if info.name == f"{victim['key']}.wav":
                data = data[:-400]  # 100 stereo samples short
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        extra = tarfile.TarInfo("stray.json")
        extra.size = 2
        tar.addfile(extra, io.BytesIO(b"{}"))

    problems = "\n".join(verify_build(recipe))
    assert f"reference {ref_id} comes from the target's own video" in problems
    assert "targets: rows that are not ok must carry an error reason" in problems
    assert f"key {victim['key']}: target video has 120 frames, 121 expected" in problems
    assert f"key {victim['key']}: target audio has 77340 samples, 77440 expected" in problems
    assert "tar key stray not in the index" in problems
    assert f"turn {clean['turn_id']} is not marked overlap but shares time with {intruder}" in problems
    assert f"target {target['target_id']} crosses a scene cut ([{target['start_s'] + 2.0}])" in problems
    assert f"video {shared} feeds splits" in problems
    assert f"identity {a['identity_id']} holds {sorted([a['voice_id'], b['voice_id']])}" in problems


def test_verify_reports_near_duplicate_voices_across_splits(built: Recipe, tmp_path: Path, capsys) -> None:
    from ltxa_data.reporting.verify import near_duplicate_identities

    assert near_duplicate_identities(built) == [], "distinct espeak voices are far apart"
    loose = copy_build(built, tmp_path, pairs={"splits": {"train": 0.5, "val": 0.25, "test": 0.25,
                                                          "near_duplicate_similarity": 0.3}})
    report = near_duplicate_identities(loose)
    splits = dict(frames(loose, "pairs").select("identity_id", "split").unique().iter_rows())
    assert report and all("have mean voices" in line for line in report)
    for line in report:
        a, b = line.split()[1], line.split()[4]
        assert splits[a] != splits[b]
    assert main(["verify", str(loose.base_dir / "recipe.yaml"), "--no-media"]) == 0, "a report, not a violation"
    assert "warning: identities" in capsys.readouterr().out


def test_swap_eval_cases_change_only_the_reference_or_only_the_seed(built: Recipe) -> None:
    cases = frames(built, "swap_eval")
    pairs = frames(built, "pairs")
    held_out = pairs.filter(pl.col("split").is_in(["val", "test"]))
    assert set(cases["identity_id"]) == set(held_out["identity_id"]), "every held-out identity is evaluated"
    swaps, seeds = cases.filter(pl.col("kind") == "swap"), cases.filter(pl.col("kind") == "seed")
    assert seeds.height == cases["target_id"].n_unique(), "one seed control per evaluated target"
    assert (~swaps["b_in_train"]).any(), "some B voices were never seen in training"
    assert (swaps["identity_b"] != swaps["identity_id"]).all() and (swaps["seed_a"] == swaps["seed_b"]).all()
    train = set(pairs.filter(pl.col("split") == "train")["identity_id"])
    assert all((b in train) == seen for b, seen in swaps.select("identity_b", "b_in_train").iter_rows())



def test_references_come_from_another_source_when_sources_are_known(built: Recipe, tmp_path: Path) -> None:
    """Each speaker folder of the corpus is declared a source: a reference may then only come from
    a clip in another folder (the dialog clips), and targets without one say why."""
    recipe = copy_build(built, tmp_path, input={"paths": built.input.paths, "source_regex": r"^(?P<source>spk\d+)/"})
    build(recipe, progress=False)
    videos = frames(recipe, "videos")
    assert videos["source"].is_not_null().all()
    source = dict(videos.select("video_id", "source").iter_rows())
    pairs = frames(recipe, "pairs", ok=False)
    ok = pairs.filter(pl.col("status") == "ok")
    assert ok.height > 0, "the dialog clips give some speakers a voice in another folder"
    for p in ok.iter_rows(named=True):
        assert all(source[v] != source[p["target_video_id"]] for v in p["reference_video_ids"])
    skipped = pairs.filter(pl.col("status") == "skipped")
    assert skipped.height > 0 and skipped["error"].str.contains("of other sources than 'spk").all()
    assert verify_build(recipe) == []
