"""Pairs for an attribute (`attributes`, `pairs.match`): values from labels files (per video and per span) and path
regexes, each `pairs.reference_speaker` relation, held-out values, missing and conflicting labels, a value with a
single speaker, and the swap-eval cases by value. The builds are copies of the `built` fixture's, so only the
attributes, pairs, swap-eval and shard stages run again."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ltxa_data.analysis.attribute_labels import LabelRow, LabelsError, label_of_window, read_labels, regex_value
from ltxa_data.corpus.generate import load_ground_truth
from ltxa_data.corpus.scoring import window_truth
from ltxa_data.pipeline import build
from ltxa_data.recipe import AttributeConfig, Recipe, RecipeError, load_recipe
from ltxa_data.reporting.explain import explain
from ltxa_data.reporting.status import format_status, stage_statuses
from ltxa_data.reporting.verify import verify_build
from ltxa_data.stages.swap_eval import _value_cases
from ltxa_data.storage import read_frame

from .conftest import copy_build, recipe_dict, write_recipe

ACCENT = {"spk0": "north", "spk1": "south", "spk2": "north", "spk3": "south"}
"""Two speakers per value; the dialog's two speakers (spk0, spk1) have different ones."""


def write_labels(path: Path, corpus: Path, accent: dict[str, str], skip: tuple[str, ...] = (),
                 extra: str = "") -> dict:
    """A labels CSV from the corpus's ground truth: a whole-video row per clip of one voice, a row per speech
    segment of a dialog (spans); clips whose path is in `skip` get no row. Returns the ground truth."""
    gt = load_ground_truth(corpus)
    lines = ["video,start,end,value"]
    for c in gt["clips"]:
        if c["path"] in skip:
            continue
        if len(c["speakers"]) > 1:
            lines += [f"{c['path']},{s['start']},{s['end']},{accent[s['speaker']]}" for s in c["segments"]]
        else:
            lines.append(f"{c['path']},,,{accent[c['identity']]}")
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return gt


def attribute_build(built: Recipe, dest: Path, accent: dict[str, str] = ACCENT, skip: tuple[str, ...] = (),
                    extra: str = "", **pairs: object) -> Recipe:
    dest.mkdir(parents=True, exist_ok=True)
    write_labels(dest / "accent.csv", Path(built.input.paths[0]), accent, skip, extra)
    recipe = copy_build(built, dest, attributes={"accent": {"labels": str(dest / "accent.csv")}},
                        pairs={"match": "accent", **pairs})
    # A build keeps its identities' previous splits; these place them afresh, value by value.
    (recipe.manifests_dir / "pairs.parquet").unlink()
    build(recipe, progress=False)
    return recipe


@pytest.fixture(scope="module")
def by_accent(built: Recipe, tmp_path_factory: pytest.TempPathFactory) -> Recipe:
    """Pairs by accent, references from any speaker: the test split gets speakers of both values."""
    return attribute_build(built, tmp_path_factory.mktemp("by_accent"), reference_speaker="any")


def test_labels_per_video_and_per_span_give_each_window_its_speakers_value(by_accent: Recipe) -> None:
    gt = load_ground_truth(Path(by_accent.input.paths[0]))
    clips = {c["path"]: c for c in gt["clips"]}
    videos = read_frame(by_accent.manifests_dir, "videos", ok_only=True).select("video_id", "rel_path")
    attrs = read_frame(by_accent.manifests_dir, "attributes").join(videos, on="video_id")
    targets = read_frame(by_accent.manifests_dir, "targets", ok_only=True)
    refs = read_frame(by_accent.manifests_dir, "references", ok_only=True)
    assert attrs.height == targets.height + refs.height  # one row per window (one attribute)
    checked = spans = 0
    for r in attrs.iter_rows(named=True):
        clip = clips[r["rel_path"]]
        speaker, _, _ = window_truth(clip, r["start_s"], r["duration_s"])
        assert r["status"] == "ok", r["error"]
        assert r["value"] == ACCENT[speaker], (r["rel_path"], r["start_s"], r["source"])
        assert r["source"].startswith("accent.csv line ")
        checked += 1
        spans += len(clip["speakers"]) > 1
    assert checked and spans  # windows of a dialog took their turn's value from span rows
    dialog_values = attrs.filter(pl.col("rel_path").str.contains("dialog"))["value"].unique().to_list()
    assert len(dialog_values) == 2  # the dialog's speakers have different accents here
    assert verify_build(by_accent) == []


def test_pairs_share_the_value_and_splits_hold_out_people(by_accent: Recipe) -> None:
    pairs = read_frame(by_accent.manifests_dir, "pairs", ok_only=True)
    assert pairs.height and set(pairs["match"]) == {"accent"}
    value = {(w, i): v for w, i, v in read_frame(by_accent.manifests_dir, "attributes", ok_only=True)
             .select("window", "window_id", "value").iter_rows()}
    split = {}
    for p in pairs.iter_rows(named=True):
        assert value[("target", p["target_id"])] == p["value"]
        for ref, who, video in zip(p["reference_ids"], p["reference_identity_ids"], p["reference_video_ids"],
                                   strict=True):
            assert value[("reference", ref)] == p["value"]
            assert video != p["target_video_id"]
            for person in (p["identity_id"], who):
                assert split.setdefault(person, p["split"]) == p["split"]  # no person in two splits
    assert len(set(split.values())) >= 2


@pytest.mark.parametrize("relation", ["same", "different"])
def test_each_reference_speaker_relation_holds(built: Recipe, tmp_path: Path, relation: str) -> None:
    recipe = attribute_build(built, tmp_path, reference_speaker=relation)
    pairs = read_frame(recipe.manifests_dir, "pairs", ok_only=True)
    assert pairs.height
    for p in pairs.iter_rows(named=True):
        for who in p["reference_identity_ids"]:
            assert (who == p["identity_id"]) == (relation == "same")
    assert verify_build(recipe) == []


def test_a_value_of_a_single_speaker_gets_no_different_reference(built: Recipe, tmp_path: Path) -> None:
    solo = {"spk0": "north", "spk1": "north", "spk2": "north", "spk3": "solo"}
    recipe = attribute_build(built, tmp_path, accent=solo)  # reference_speaker: different (the default)
    pairs = read_frame(recipe.manifests_dir, "pairs")
    value = read_frame(recipe.manifests_dir, "attributes").filter(pl.col("window") == "target")
    solo_targets = value.filter(pl.col("value") == "solo")["window_id"].to_list()
    assert solo_targets
    rows = pairs.filter(pl.col("target_id").is_in(solo_targets))
    assert set(rows["status"]) == {"skipped"}
    assert all("only the target's own speaker carries accent 'solo'" in e and "reference_speaker: different" in e
               for e in rows["error"])
    assert pairs.filter(pl.col("status") == "ok").height  # the other values still pair
    assert verify_build(recipe) == []


def test_held_out_values_are_paired_only_in_test(built: Recipe, tmp_path: Path) -> None:
    recipe = attribute_build(built, tmp_path, reference_speaker="any",
                             splits={"train": 0.5, "val": 0.0, "test": 0.5, "held_out_values": ["south"]})
    pairs = read_frame(recipe.manifests_dir, "pairs")
    ok = pairs.filter(pl.col("status") == "ok")
    assert set(ok.filter(pl.col("value") == "south")["split"]) == {"test"}
    held = pairs.filter(pl.col("error").str.contains("held out for test"))
    assert set(ok.filter(pl.col("split") != "test")["value"]) <= {"north"}
    for e in held["error"]:
        assert "accent 'south' is held out for test (pairs.splits.held_out_values)" in e
    cases = read_frame(recipe.manifests_dir, "swap_eval", ok_only=True)
    swaps = cases.filter(pl.col("kind") == "swap")
    assert swaps.height
    assert (swaps["value_a"] != swaps["value_b"]).all()
    unseen = swaps.filter(~pl.col("b_in_train"))
    assert set(unseen["value_b"]) <= {"south"}
    assert verify_build(recipe) == []
    assert "pairs by accent" in format_status(recipe, stage_statuses(recipe))


def test_missing_and_conflicting_labels_leave_those_windows_without_a_value(built: Recipe, tmp_path: Path) -> None:
    gt = load_ground_truth(Path(built.input.paths[0]))
    singles = [c["path"] for c in gt["clips"] if c["kind"] == "single"]
    missing, clash = singles[0], singles[4]
    recipe = attribute_build(built, tmp_path, skip=(missing,), extra=f"{clash},,,elsewhere\n",
                             reference_speaker="any")
    lines = (tmp_path / "accent.csv").read_text().splitlines()
    clash_lines = sorted(f"line {i}" for i, line in enumerate(lines, 1) if line.startswith(clash + ","))
    videos = read_frame(recipe.manifests_dir, "videos", ok_only=True).select("video_id", "rel_path")
    attrs = read_frame(recipe.manifests_dir, "attributes").join(videos, on="video_id")
    gone = attrs.filter(pl.col("rel_path") == missing)
    assert gone.height and set(gone["status"]) == {"skipped"}
    assert all(e == f"{missing}: no row of accent.csv names this video" for e in gone["error"])
    fought = attrs.filter(pl.col("rel_path") == clash)
    assert fought.height and set(fought["status"]) == {"skipped"}
    for e in fought["error"]:
        assert "conflicting labels" in e and all(f"{w} of accent.csv" in e for w in clash_lines), e
    others = attrs.filter(~pl.col("rel_path").is_in([missing, clash]))
    assert set(others["status"]) == {"ok"}  # nothing else lost
    pairs = read_frame(recipe.manifests_dir, "pairs")
    skipped = pairs.join(videos.rename({"video_id": "target_video_id"}), on="target_video_id").filter(
        pl.col("rel_path").is_in([missing, clash]))
    assert skipped.height and set(skipped["status"]) == {"skipped"}
    assert all(e.split(": ", 1)[1].startswith("no accent value (") for e in skipped["error"])
    assert pairs.filter(pl.col("status") == "ok").height
    assert verify_build(recipe) == []
    assert "attribute accent (labels): windows with a value" in format_status(recipe, stage_statuses(recipe))


def test_bad_label_rows_refuse_the_build_before_any_work(built: Recipe, tmp_path: Path) -> None:
    corpus = Path(built.input.paths[0])
    labels = tmp_path / "accent.csv"
    labels.write_text("video,start,end,value\nspk0/clip_00.mp4,,,north\nspk0/clip_01.mp4,4,2,north\n"
                      "spk1/clip_00.mp4,,,\nspk1/clip_01.mp4,1,,south\n", encoding="utf-8")
    recipe = load_recipe(write_recipe(tmp_path, recipe_dict(corpus, attributes={"accent": {"labels": str(labels)}},
                                                            pairs={"match": "accent"})))
    with pytest.raises(RecipeError) as e:
        build(recipe, progress=False)
    msg = str(e.value)
    assert f"attributes.accent.labels: {labels}: 3 row(s) are not labels" in msg
    assert "line 3: end 2 is not after start 4" in msg and "line 4: no value" in msg
    assert "line 5: a span needs both start and end" in msg
    assert not recipe.manifests_dir.exists()  # refused before any stage ran
    labels.write_text("clip,accent\nspk0/clip_00.mp4,north\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"no column 'video' or 'value' \(columns: clip, accent"):
        build(recipe, progress=False)


def test_explain_says_why_each_reference_matches(by_accent: Recipe) -> None:
    pair = read_frame(by_accent.manifests_dir, "pairs", ok_only=True).row(0, named=True)
    text = explain(by_accent, pair["key"])
    assert f"WHY THEY MATCH accent '{pair['value']}'" in text
    assert "reference 0 accent:" in text and "(pairs.match accent)  pass" in text
    assert "(pairs.reference_speaker)  pass" in text and "from accent.csv line" in text


def test_label_spans_and_regex_values() -> None:
    cfg = AttributeConfig(labels="x.csv")
    rows = [LabelRow("line 2", "v.mp4", "calm", 0.0, 5.0), LabelRow("line 3", "v.mp4", "angry", 5.0, 9.0)]
    assert label_of_window(rows, 0.5, 4.5, cfg, "x.csv").value == "calm"
    assert label_of_window(rows, 4.0, 8.0, cfg, "x.csv").value == "angry"  # 75% of the window
    edge = label_of_window(rows, 2.5, 7.5, cfg, "x.csv")  # half and half
    assert edge.value is None and "conflicting labels" in (edge.reason or "")
    strict = AttributeConfig(labels="x.csv", min_coverage=0.9)
    assert label_of_window(rows, 4.0, 8.0, strict, "x.csv").value is None
    gap = label_of_window(rows, 9.5, 12.0, cfg, "x.csv")
    assert gap.value is None and "no row of x.csv covers 9.50-12.00 s" in (gap.reason or "")
    overlapping = [LabelRow("line 2", "v.mp4", "calm", 0.0, 2.0), LabelRow("line 3", "v.mp4", "calm", 0.5, 1.5)]
    once = label_of_window(overlapping, 0.0, 5.0, cfg, "x.csv")  # 2 s of 5 covered, not 3
    assert once.value is None and "cover only 40%" in (once.reason or "")
    assert regex_value(r"^(?P<value>[a-z]+)_", "rp_1/clip.mp4").value == "rp"
    assert regex_value(r"^(?P<value>[a-z]+)_", "9/clip.mp4").value is None


def test_labels_files_in_three_formats_read_alike(tmp_path: Path) -> None:
    rows = [{"video": "a.mp4", "start": None, "end": None, "value": "x"},
            {"video": "b.mp4", "start": 1.0, "end": 2.5, "value": "y"}]
    (tmp_path / "l.csv").write_text("video,start,end,value\na.mp4,,,x\nb.mp4,1,2.5,y\n")
    (tmp_path / "l.jsonl").write_text('{"video": "a.mp4", "value": "x"}\n{"video": "b.mp4", "start": 1, '
                                      '"end": 2.5, "value": "y"}\n')
    pl.DataFrame(rows).write_parquet(tmp_path / "l.parquet")
    read = {s: [(r.video, r.start, r.end, r.value) for r in read_labels(tmp_path / f"l.{s}")]
            for s in ("csv", "jsonl", "parquet")}
    assert read["csv"] == read["jsonl"] == read["parquet"] == [("a.mp4", None, None, "x"), ("b.mp4", 1.0, 2.5, "y")]
    # A byte-order mark, numeric values (0 is a value, not a missing one), a missing parquet cell.
    (tmp_path / "n.jsonl").write_text('\ufeff{"video": "a.mp4", "value": 0}\n{"video": "b.mp4", "value": 2.0}\n')
    assert [r.value for r in read_labels(tmp_path / "n.jsonl")] == ["0", "2"]
    pl.DataFrame({"video": ["a.mp4"], "value": [float("nan")]}).write_parquet(tmp_path / "nan.parquet")
    with pytest.raises(LabelsError, match="row 1: no value"):
        read_labels(tmp_path / "nan.parquet")


@pytest.mark.parametrize(("data", "message"), [
    ({"pairs": {"match": "accent"}}, "'accent' is neither `identity` nor an attribute"),
    ({"pairs": {"reference_speaker": "different"}}, "reference_speaker: different needs pairs.match"),
    ({"attributes": {"accent": {"labels": "a.csv", "label_regex": "(?P<value>x)"}}}, "exactly one of"),
    ({"attributes": {"accent": {"label_regex": "(?P<x>x)"}}}, "named group (?P<value>"),
    ({"attributes": {"accent": {"label_regex": "(?P<value>x"}}}, "label_regex is not a regular expression"),
    ({"attributes": {"accent": {"backend": "speechbrain_classifier"}}}, "needs `model`"),
    ({"pairs": {"splits": {"held_out_values": ["x"]}}}, "held_out_values needs pairs.match"),
])
def test_recipe_refuses_bad_attribute_settings(tmp_path: Path, data: dict, message: str) -> None:
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        load_recipe(write_recipe(tmp_path, recipe_dict(tmp_path, **data)))


def test_swap_cases_by_value_swap_to_seen_and_unseen_values() -> None:
    pairs = pl.DataFrame([
        dict(target_id="t1", identity_id="a", split="test", reference_ids=["r_b"], target_video_id="va",
             reference_video_ids=["vb"], value="x", reference_identity_ids=["b"]),
        dict(target_id="t0", identity_id="c", split="train", reference_ids=["r_d"], target_video_id="vc",
             reference_video_ids=["vd"], value="y", reference_identity_ids=["d"]),
        dict(target_id="t2", identity_id="e", split="test", reference_ids=["r_f"], target_video_id="ve",
             reference_video_ids=["vf"], value="z", reference_identity_ids=["f"])])
    refs = pl.DataFrame([
        dict(reference_id="r_b", video_id="vb", identity_id="b", quality=1.0, value="x"),
        dict(reference_id="r_f", video_id="vf", identity_id="f", quality=1.0, value="z"),
        dict(reference_id="r_e", video_id="ve2", identity_id="e", quality=0.9, value="z"),
        dict(reference_id="r_a", video_id="va2", identity_id="a", quality=0.9, value="x")])
    cases = {c["case_id"]: c for c in _value_cases(pairs, refs, 4, 0)}
    # t1 (x): z is held out (no train pair carries it) -> the unseen swap; no seen value has held-out speakers.
    assert cases["t1-swap-heldout"]["value_b"] == "z" and not cases["t1-swap-heldout"]["b_in_train"]
    assert "t1-swap-train" not in cases
    assert cases["t1-seed-heldout"]["reference_b_id"] == "r_b" and cases["t1-seed-heldout"]["identity_b"] == "b"
    # t2 (z): x is not carried by train pairs either, so it is an unseen swap too; B is never the target's speaker.
    assert cases["t2-swap-heldout"]["identity_b"] in {"a", "b"}


def test_a_classifier_gives_every_window_a_value_or_the_reason(built: Recipe, tmp_path: Path) -> None:
    from .test_attribute_classifier import LAYOUTS, write_random_classifier

    model = write_random_classifier(tmp_path / "accent-id-commonaccent_ecapa", "commonaccent")
    labels = set(LAYOUTS["commonaccent"][2])
    recipe = copy_build(built, tmp_path, attributes={
        "accent": {"backend": "speechbrain_classifier", "model": str(model), "device": "cpu", "min_confidence": 0.0},
        "confident": {"backend": "speechbrain_classifier", "model": str(model), "device": "cpu",
                      "min_confidence": 0.99}}, pairs={"match": "accent", "reference_speaker": "any"})
    (recipe.manifests_dir / "pairs.parquet").unlink()
    build(recipe, progress=False)
    attrs = read_frame(recipe.manifests_dir, "attributes")
    windows = read_frame(recipe.manifests_dir, "targets", ok_only=True).height + read_frame(
        recipe.manifests_dir, "references", ok_only=True).height
    accent = attrs.filter(pl.col("attribute") == "accent")
    assert accent.height == windows and set(accent["status"]) == {"ok"}
    assert set(accent["value"]) <= labels and accent["confidence"].is_between(0, 1).all()
    assert set(accent["source"]) == {model.name}
    unsure = attrs.filter(pl.col("attribute") == "confident")
    assert unsure.height == windows and set(unsure["status"]) == {"skipped"}  # random weights: never 99% sure
    assert all("under attributes.confident.min_confidence 0.99" in e for e in unsure["error"])
    assert verify_build(recipe) == []
