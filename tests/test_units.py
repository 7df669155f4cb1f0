"""The building blocks, one by one: windows, splits, ids, clustering, atomic files, shards, executor."""

from __future__ import annotations

import io
import itertools
import os
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ltxa_data.analysis.clustering import agglomerative_labels
from ltxa_data.analysis.splits import split_of
from ltxa_data.analysis.windows import covered, single_speaker_windows
from ltxa_data.executors.jobs import Job
from ltxa_data.executors.local import LocalExecutor
from ltxa_data.gates import TARGET_GATES, reason_of, record_problems, rejection
from ltxa_data.ids import child_id, content_fingerprint
from ltxa_data.recipe import SplitsConfig, parse_recipe
from ltxa_data.schemas import SchemaError, conform, to_table
from ltxa_data.shard_format import ShardWriter
from ltxa_data.stages.pairs import choose_references
from ltxa_data.storage import atomic_open, sweep_temp_files


def test_covered_merges_overlapping_intervals() -> None:
    assert covered([(0, 2), (1, 3), (5, 6)], 0, 10) == pytest.approx(4.0)
    assert covered([(0, 2), (1, 3)], 1.5, 2.5) == pytest.approx(1.0)
    assert covered([], 0, 1) == 0.0


def test_single_speaker_windows_exclude_other_speakers_and_do_not_overlap() -> None:
    own = [(0.0, 10.0)]
    others = [(4.0, 5.0)]
    starts = [i * 0.5 for i in range(20)]
    ws = single_speaker_windows(own, others, starts, 3.5, 0.7, 0.0, 10)
    assert ws and all(w.start + 3.5 <= 4.0 + 1e-9 or w.start >= 5.0 - 1e-9 for w in ws)
    for a, b in itertools.pairwise(ws):
        assert a.start + 3.5 <= b.start + 1e-9
    assert len(single_speaker_windows(own, others, starts, 3.5, 0.7, 0.0, 1)) == 1


def test_splits_are_deterministic_proportional_and_stable_when_identities_are_added() -> None:
    fr = SplitsConfig(train=0.8, val=0.1, test=0.1)
    first = {f"id-{i}": split_of(f"id-{i}", 0, fr) for i in range(2000)}
    counts = {s: sum(v == s for v in first.values()) for s in ("train", "val", "test")}
    assert 0.77 < counts["train"] / 2000 < 0.83 and 0.08 < counts["val"] / 2000 < 0.12
    more = {f"id-{i}": split_of(f"id-{i}", 0, fr) for i in range(4000)}
    assert all(more[k] == v for k, v in first.items())
    assert any(split_of(f"id-{i}", 1, fr) != first[f"id-{i}"] for i in range(50)), "the seed matters"


def test_references_never_come_from_the_target_video() -> None:
    cands = [("r1", "vA"), ("r2", "vA"), ("r3", "vB"), ("r4", "vC")]
    for seed in range(20):
        chosen = choose_references("t", "vA", cands, 2, seed)
        assert len(chosen) == 2 and all(v != "vA" for _, v in chosen)
        assert {v for _, v in chosen} == {"vB", "vC"}, "spread over videos first"
    assert choose_references("t", "vA", cands, 1, 3) == choose_references("t", "vA", cands, 1, 3)
    assert choose_references("t", "vA", [("r1", "vA")], 1, 0) == []


def test_ids_are_deterministic(tmp_path: Path) -> None:
    assert child_id("abc", "S1", 1.2345) == "abc-S1-000001234"
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    data = os.urandom(10_000)
    a.write_bytes(data)
    b.write_bytes(data)
    assert content_fingerprint(a, 4096) == content_fingerprint(b, 4096)
    b.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert content_fingerprint(a, 4096) != content_fingerprint(b, 4096)


def test_clustering_separates_planted_groups_and_merges_close_centroids() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 64))
    x = np.concatenate([c + 0.3 * rng.normal(size=(10, 64)) for c in centers])
    labels = agglomerative_labels(x, 0.8)
    assert len(set(labels)) == 3
    assert all(len(set(labels[i * 10 : (i + 1) * 10])) == 1 for i in range(3))
    assert labels[0] == 0, "numbered by first appearance"
    noisy = np.concatenate([centers[0] + 1.2 * rng.normal(size=(12, 64))])
    assert len(set(agglomerative_labels(noisy, 0.5))) > 1
    assert len(set(agglomerative_labels(noisy, 0.5, centroid_merge_threshold=0.2))) == 1


def test_schema_checks_reject_bad_rows() -> None:
    row = dict(turn_id="v-S0-000000000", video_id="v", speaker="S0", start_s=0.0, end_s=1.0, overlap=False,
               status="ok", error=None)
    assert to_table("turns", [row]).num_rows == 1
    with pytest.raises(SchemaError, match="extra"):
        to_table("turns", [{**row, "bogus": 1}])
    with pytest.raises(SchemaError, match="must carry an error reason"):
        to_table("turns", [{**row, "status": "failed"}])
    with pytest.raises(SchemaError, match="status must be one of"):
        to_table("turns", [{**row, "status": "meh", "error": "x"}])
    with pytest.raises(SchemaError, match="duplicate key"):
        to_table("turns", [row, row])
    with pytest.raises(SchemaError, match="columns"):
        conform("turns", pa.table({"turn_id": ["x"]}))


def test_reasons_group_without_file_names_and_details() -> None:
    assert reason_of("a b/c's.mp4: too short: under x=3.5 (0.40 s)") == "too short: under x=3.5 (0.40 s)"
    assert reason_of("clip.mkv: no audio track") == "no audio track"
    assert reason_of("dir/clip.mkv: no audio: none", "dir/clip.mkv") == "no audio: none"
    assert rejection("a b/c's.mp4: too short: under x=3.5 (0.40 s)") == "too short: under x=N"
    a = rejection("0123456789abcdef-S0-000004000: the face is not the voice's: 0.72 from identity id-7a3 > 0.6")
    b = rejection("fedcba9876543210-S1-000001000: the face is not the voice's: 0.65 from identity id-9b1 > 0.6")
    assert a == b == "the face is not the voice's: N from identity <id> > N"


def test_a_rejection_by_a_gate_groups_under_the_gate_not_its_text() -> None:
    """A row a gate skipped groups under that gate (its record), whatever its error says; the record's verdict
    follows from value and threshold, and `record_problems` names a record that is missing, failed, stale or
    inconsistent."""
    recipe = parse_recipe({"name": "t", "input": {"paths": ["x"]}, "output": {"dir": "out"}}, base_dir=Path("/tmp"))
    gate = TARGET_GATES["active_speaker"]
    low = gate.record(0.4, recipe)
    assert low == {"name": "active_speaker", "value": 0.4, "threshold": recipe.targets.active_speaker.threshold,
                   "passed": False}
    assert rejection("x.mp4: anything at all: 0.40", [TARGET_GATES["speech_ratio"].record(0.9, recipe), low]) == \
        "the face does not speak with the voice (active_speaker)"
    assert gate.record(None, recipe)["passed"] is False and gate.record(float("nan"), recipe)["passed"] is False
    ok = [TARGET_GATES["speech_ratio"].record(0.9, recipe)]
    assert record_problems(ok, ["speech_ratio"], recipe, "t") == []
    assert record_problems(ok, ["speech_ratio", "face"], recipe, "t") == ["t: no record of gate face"]
    assert "kept, but fails" in record_problems([low], [], recipe, "t")[0]
    assert "says passed=True" in record_problems([{**low, "passed": True}], [], recipe, "t")[0]
    assert "the recipe says" in record_problems([{**ok[0], "threshold": 0.1}], [], recipe, "t")[0]


def test_atomic_open_never_leaves_a_partial_final_file(tmp_path: Path) -> None:
    dest = tmp_path / "x.bin"
    with pytest.raises(ValueError), atomic_open(dest) as f:
        f.write(b"half")
        raise ValueError("killed")
    assert not dest.exists() and not list(tmp_path.iterdir())
    with atomic_open(dest) as f:
        f.write(b"whole")
    assert dest.read_bytes() == b"whole"
    from ltxa_data.storage import _UMASK

    assert dest.stat().st_mode & 0o777 == 0o666 & ~_UMASK, "readable by others as the umask allows, not 0600"
    (tmp_path / ".y.bin.abc.tmp").write_bytes(b"left by a killed writer")
    assert sweep_temp_files(tmp_path) == 1 and dest.exists()


def test_shard_writer_rolls_over_by_bytes_and_is_deterministic(tmp_path: Path) -> None:
    def write(root: Path) -> tuple[list[str], list]:
        w = ShardWriter(root, "shards/train/train-00000", max_bytes=40_000)
        placed = [w.add(f"k{i:02d}", {"json": b"{}", "bin": bytes([i]) * 15_000}) for i in range(5)]
        return w.close(), placed

    outputs, placed = write(tmp_path / "a")
    assert outputs == [f"shards/train/train-00000-{i:02d}.tar" for i in range(3)]
    assert [p.shard for p in placed] == [outputs[0]] * 2 + [outputs[1]] * 2 + [outputs[2]]
    for p in placed:
        with tarfile.open(tmp_path / "a" / p.shard) as tar:
            m = next(m for m in tar if m.name == p.members[0])
            assert m.offset == p.offset and m.mtime == 0
    again, _ = write(tmp_path / "b")
    assert [(tmp_path / "a" / o).read_bytes() for o in outputs] == [(tmp_path / "b" / o).read_bytes() for o in again]

    w = ShardWriter(tmp_path / "c", "shards/val/val-00000", max_bytes=1 << 20)
    w.add("k", {"bin": b"x" * 100})
    w.abort()
    assert not list((tmp_path / "c").rglob("*.tar")) and not list((tmp_path / "c").rglob(".*.tmp"))


class _CountingFactory:
    """A worker factory whose setup is observable: each worker records its pid once."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return _square


def _square(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_local_executor_sets_up_once_per_worker(tmp_path: Path) -> None:
    log = tmp_path / "setups.txt"
    results = list(LocalExecutor(workers=2).map(_CountingFactory(log), list(range(12))))
    assert sorted(r[0] for r in results) == [i * i for i in range(12)]
    setups = log.read_text().split()
    assert len(setups) == len(set(setups)) <= 2, "setup ran once per worker"
    assert {r[1] for r in results} <= {int(p) for p in setups}
    [(square, pid)] = LocalExecutor(workers=1).map(_CountingFactory(log), [3])
    assert square == 9 and pid != os.getpid(), "a single item still runs in a worker, never in the driver"


def test_local_workers_outlive_a_map_and_set_up_each_stage(tmp_path: Path) -> None:
    """Consecutive maps reuse the processes started with the same environment (one start and import per
    build, not per stage), each map's factory set up in them again; another environment gets its own."""
    ex = LocalExecutor(workers=2)
    first_log, second_log = tmp_path / "a.txt", tmp_path / "b.txt"
    first = {pid for _, pid in ex.map(_CountingFactory(first_log), list(range(6)), Job(workers=2))}
    second = {pid for _, pid in ex.map(_CountingFactory(second_log), list(range(6)), Job(workers=2))}
    assert second <= first and set(second_log.read_text().split()) == {str(p) for p in second}
    other = {pid for _, pid in ex.map(_CountingFactory(first_log), [1], Job(workers=1, env={"OMP_NUM_THREADS": "2"}))}
    assert not other & first, "a worker started with other thread counts is not reused"
    kept = [w.proc for w in ex._idle]
    assert kept and all(p.is_alive() for p in kept)
    ex.shutdown()
    assert not any(p.is_alive() for p in kept) and not ex._idle


def test_wav_bytes_roundtrip() -> None:
    import soundfile as sf

    from ltxa_data.media import encode_wav

    x = np.stack([np.linspace(-0.5, 0.5, 1600), np.zeros(1600)]).astype(np.float32)
    y, sr = sf.read(io.BytesIO(encode_wav(x, 16000)), dtype="float32")
    assert sr == 16000 and y.shape == (1600, 2) and np.abs(y.T - x).max() < 1e-4


def test_inputs_from_folders_globs_and_list_files(tmp_path: Path) -> None:
    from ltxa_data.recipe import parse_recipe
    from ltxa_data.stages.scan import find_inputs

    for rel in ("a/x.mp4", "a/sub/y.MOV", "a/notes.txt", "b/z.mkv", "c/w.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "list.txt").write_text("# comment\nc/w.mp4\n\n")
    recipe = parse_recipe({"name": "t", "input": {"paths": ["a", "b/*.mkv", "list.txt", "a/x.mp4"]},
                           "output": {"dir": "out"}}, base_dir=tmp_path)
    found = find_inputs(recipe)
    assert dict(found) == {str(tmp_path / "a/x.mp4"): "x.mp4", str(tmp_path / "a/sub/y.MOV"): "sub/y.MOV",
                           str(tmp_path / "b/z.mkv"): "z.mkv", str(tmp_path / "c/w.mp4"): "c/w.mp4"}
    assert [p for p, _ in found] == sorted(p for p, _ in found), "sorted, and a file named twice is scanned once"


def test_a_partition_where_every_item_fails_alike_stops_the_run() -> None:
    from ltxa_data.errors import SystemicError
    from ltxa_data.media import MediaError
    from ltxa_data.stages.base import guarded

    def broken(item: int) -> list[dict]:
        raise KeyError("a bug, not an input")

    with pytest.raises(SystemicError, match="all 3 items of a partition failed with KeyError"):
        guarded([1, 2, 3], broken, lambda item, reason: {"item": item, "error": reason}, str)

    def bad_media(item: int) -> list[dict]:
        raise MediaError("no audio track")

    rows = guarded([1, 2], bad_media, lambda item, reason: {"item": item, "error": reason}, str)
    assert [r["error"] for r in rows] == ["no audio track"] * 2, "input faults are rows, however many"

    def one_odd(item: int) -> list[dict]:
        if item == 2:
            raise ValueError("odd input")
        return [{"item": item, "error": None}]

    rows = guarded([1, 2, 3], one_odd, lambda item, reason: {"item": item, "error": reason}, str)
    assert [r["error"] for r in rows] == [None, "ValueError: odd input", None]


class _FailingFactory:
    def __call__(self):
        from ltxa_data.errors import SystemicError

        raise SystemicError("model weights not found at /models/x: download them first")


def test_a_worker_whose_setup_fails_reports_the_reason() -> None:
    from ltxa_data.errors import SystemicError

    with pytest.raises(SystemicError, match="model weights not found"):
        list(LocalExecutor(workers=2).map(_FailingFactory(), [1, 2, 3]))


def test_partitions_are_hash_buckets_so_one_new_video_touches_one_partition() -> None:
    import polars as pl

    from ltxa_data.stages.base import partitions_by

    ids = [f"{i:016x}" for i in range(0, 4000, 37)]
    before = partitions_by("video_id", 16, {"videos": pl.DataFrame({"video_id": ids})})
    after = partitions_by("video_id", 16, {"videos": pl.DataFrame({"video_id": [*ids, "ffffffffffffff00"]})})
    changed = {p.key for p in after} ^ {p.key for p in before} | {
        a.key for a in after for b in before if a.key == b.key and a.input_hash != b.input_hash}
    assert len(changed) == 1
    assert sorted(v for p in before for v in p.data["videos"]["video_id"]) == sorted(ids)


def test_group_embeddings_keeps_video_speakers_apart_and_labels_together() -> None:
    from ltxa_data.analysis.clustering import group_embeddings

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 32))
    x = np.stack([a + 0.05 * rng.normal(size=32) for _ in range(4)] + [b + 0.05 * rng.normal(size=32)
                                                                       for _ in range(2)])
    free = group_embeddings(x, 0.8)
    assert len(set(free[:4])) == 1 and free[4] == free[5] != free[0]
    # Voices 0 and 1 come from one video: never one identity, however alike.
    split = group_embeddings(x, 0.8, groups=["v0", "v0", "v2", "v3", "v4", "v5"])
    assert split[0] != split[1]
    # Labels: the same label joins even dissimilar voices; different labels never merge.
    labelled = group_embeddings(x, 0.8, labels=["p", None, None, None, "p", None])
    assert labelled[0] == labelled[4], "must-link holds even against the embeddings"
    one_label = group_embeddings(x, 0.8, labels=["p", None, None, None, None, None])
    assert len(set(one_label[:4])) == 1 and one_label[4] != one_label[0], "unlabelled voices join by similarity"
    apart = group_embeddings(x, 0.8, labels=["p", "q", None, None, None, None])
    assert apart[0] != apart[1]


def test_identity_ids_survive_new_voices_and_record_their_run() -> None:
    import polars as pl

    from ltxa_data.stages.identify import stable_names

    first, created = stable_names(np.array([0, 0, 1]), ["v1-S0", "v2-S0", "v3-S0"], [None] * 3, None)
    assert set(created.values()) == {1}
    prev = pl.DataFrame({"voice_id": ["v1-S0", "v2-S0", "v3-S0"], "identity_id": [first[0], first[0], first[1]],
                         "created_run": [1, 1, 1]})
    # A new voice v0 sorts before the others: it must not rename the identity it joins.
    names, created = stable_names(np.array([0, 0, 0, 1, 2]), ["v0-S0", "v1-S0", "v2-S0", "v3-S0", "v9-S0"],
                                  [None] * 5, prev)
    assert names[0] == first[0] and names[1] == first[1]
    assert created[0] == created[1] == 1 and created[2] == 2
    assert names[2] not in (first[0], first[1])


def test_identify_stage_names_labelled_identities_and_reports_clustering_alone(tmp_path: Path) -> None:
    import polars as pl

    from ltxa_data.corpus.scoring import label_agreement
    from ltxa_data.recipe import parse_recipe
    from ltxa_data.schemas import to_table
    from ltxa_data.stages.base import Partition
    from ltxa_data.stages.identify import IdentifyStage

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 64))
    vecs = [a, a, a, a, b]  # v1-S1 sounds like v1-S0 but shares its video: cannot-link
    voices = pl.DataFrame({
        "voice_id": ["v1-S0", "v1-S1", "v2-S0", "v3-S0", "v4-S0"],
        "video_id": ["v1", "v1", "v2", "v3", "v4"],
        "speaker": ["S0", "S1", "S0", "S0", "S0"],
        "embedding": [(v + 0.05 * rng.normal(size=64)).astype(np.float32).tolist() for v in vecs],
        "speech_s": [9.0, 3.0, 8.0, 8.0, 8.0],
        "video_label": ["ann", "ann", None, "ann", None],
    })
    recipe = parse_recipe({"name": "t", "input": {"paths": ["x"]}, "output": {"dir": "o"},
                           "identify": {"similarity_threshold": 0.8}}, base_dir=tmp_path)
    rows = IdentifyStage(recipe).process(Partition("all", {"voices": voices, "previous": None})).rows
    ident = pl.from_arrow(to_table("identities", rows))
    by_voice = dict(zip(ident["voice_id"], ident["identity_id"], strict=True))
    assert by_voice["v1-S0"] == by_voice["v3-S0"] == "label-ann"
    assert by_voice["v1-S1"] != "label-ann", "a label names its video's main speaker only, and cannot-link holds"
    assert by_voice["v2-S0"] == "label-ann", "an unlabelled voice joins the labelled identity it sounds like"
    assert by_voice["v4-S0"] != "label-ann"
    assert ident.filter(pl.col("label") == "ann")["voice_id"].sort().to_list() == ["v1-S0", "v3-S0"]
    assert ident["created_run"].unique().to_list() == [1]
    assert ident["clustered_alone"].null_count() == 0
    report = label_agreement(ident)
    assert report == ["labels: 1 labels on 2 voices; clustering alone would split 0 of them and merge 0 group(s) "
                      "of different labels"]


def test_variable_frame_rate_is_detected_and_resampled_to_the_frame_on_screen(tmp_path: Path) -> None:
    from ltxa_data.media import probe, read_frames, write_video

    times = [0.0, 0.04, 0.07, 0.12, 0.2, 0.21, 0.3, 0.33, 0.4, 0.5, 0.52, 0.6]
    levels = [20 * i for i in range(len(times))]
    path = tmp_path / "vfr.mp4"
    write_video(path, (np.full((64, 64, 3), v, np.uint8) for v in levels), fps=25, frame_times=times, crf=0)
    info = probe(path)
    assert info.variable_frame_rate and info.num_frames == len(times)
    grid = [k / 25 for k in range(15)]  # 25 fps instants over 0.56 s
    got = read_frames(path, grid)[:, 32, 32, 0].astype(int)
    on_screen = [levels[max(i for i, t in enumerate(times) if t <= g + 1e-6)] for g in grid]
    assert np.abs(got - np.array(on_screen)).max() <= 3, (got, on_screen)


def test_identities_sharing_a_video_share_a_split_and_splits_survive_new_links() -> None:
    from ltxa_data.analysis.splits import assign_splits, identity_groups, split_of
    from ltxa_data.recipe import SplitsConfig

    fractions = SplitsConfig(train=0.6, val=0.2, test=0.2)
    singles = [(f"v{i}", f"id{i}") for i in range(200)]
    groups = identity_groups([*singles, ("dialog", "id3"), ("dialog", "id7"), ("show", "id7"), ("show", "id9")])
    assert ["id3", "id7", "id9"] in groups and len(groups) == 198
    fresh = assign_splits(groups, {}, 0, fractions)
    assert fresh["id3"] == fresh["id7"] == fresh["id9"]
    assert all(fresh[f"id{i}"] == split_of(f"id{i}", 0, fractions) for i in range(200) if i not in (3, 7, 9))
    # A new video links two identities of different splits: the group keeps the split of the one
    # with more hours, and nothing else moves.
    a, b = next((f"id{i}", f"id{j}") for i in range(10, 200) for j in range(i + 1, 200)
                if fresh[f"id{i}"] != fresh[f"id{j}"])
    hours = {a: 5.0, b: 1.0}
    later = assign_splits(identity_groups([*singles, ("new", a), ("new", b)]), hours, 0, fractions, fresh)
    assert later[a] == later[b] == fresh[a]
    assert sum(later[i] != fresh[i] for i in fresh) == 1


def test_splits_by_hours_balance_hours_when_a_few_identities_hold_most() -> None:
    import numpy as np

    from ltxa_data.analysis.splits import assign_splits, identity_groups
    from ltxa_data.recipe import SplitsConfig

    rng = np.random.default_rng(0)
    hours = {f"id{i}": float(h) for i, h in enumerate(rng.pareto(1.2, 300) + 0.1)}
    groups = identity_groups((f"v{i}", i) for i in hours)
    fractions = SplitsConfig(train=0.8, val=0.1, test=0.1, by="hours")
    out = assign_splits(groups, hours, 0, fractions)
    total = sum(hours.values())
    got = {s: sum(h for i, h in hours.items() if out[i] == s) / total for s in ("train", "val", "test")}
    assert abs(got["train"] - 0.8) < 0.05 and abs(got["val"] - 0.1) < 0.05 and abs(got["test"] - 0.1) < 0.05, got
    by_count = assign_splits(groups, hours, 0, SplitsConfig(train=0.8, val=0.1, test=0.1))
    counted = {s: sum(h for i, h in hours.items() if by_count[i] == s) / total for s in ("train", "val", "test")}
    assert max(abs(got[s] - f) for s, f in (("train", .8), ("val", .1), ("test", .1))) < max(
        abs(counted[s] - f) for s, f in (("train", .8), ("val", .1), ("test", .1))), (got, counted)
    assert assign_splits(groups, hours, 0, fractions, out) == out, "stable given the previous build"


def test_supervisor_strikes_an_item_twice_then_poisons_it_and_stops_on_systemic_deaths(tmp_path: Path) -> None:
    """The death policy both executors share, driven with hand-written watch files."""
    import json

    from ltxa_data.errors import SystemicError
    from ltxa_data.executors.jobs import Job
    from ltxa_data.executors.supervise import SYSTEMIC_ITEMS, Supervisor
    from ltxa_data.stages.base import Partition

    def watch(task, **state) -> None:
        task.watch.write_text(json.dumps({"phase": "items", "started": 1, "finished": 0, "inflight": [], **state}))

    sup = Supervisor(Job(name="s", watch_dir=tmp_path, item_timeout_s=10), [Partition("p", {})])
    task = sup.next()
    watch(task, inflight=["a.mp4", "b.mp4"], finished=3)  # a batch: both struck once, neither poisoned
    sup.died(task, "worker killed by signal 9 (SIGKILL: out of memory?)")
    task = sup.next()
    assert task.careful and task.poison == {}, "retried one item at a time"
    watch(task, inflight=["b.mp4"])
    sup.died(task, "worker killed by signal 9 (SIGKILL: out of memory?)")
    task = sup.next()
    assert task.poison == {"b.mp4": "worker killed by signal 9 (SIGKILL: out of memory?) while reading it (2 times)"}
    watch(task, finished=5)
    assert not sup.hung(task, now=0.0) and not sup.hung(task, now=9.0) and sup.hung(task, now=10.5)
    sup.done(task)

    sup = Supervisor(Job(name="s", watch_dir=tmp_path, advice="use fewer workers"), [Partition("q", {})])
    for i in range(2):  # two deaths while loading models: not a file's fault
        task = sup.next()
        watch(task, phase="setup")
        if i:
            with pytest.raises(SystemicError, match=r"stage 's': worker died while loading.*use fewer workers"):
                sup.died(task, "worker died")
        else:
            sup.died(task, "worker died")

    sup = Supervisor(Job(name="s", watch_dir=tmp_path), [Partition("m", {})])
    task = sup.next()  # one death on an item, then one while loading: neither is systemic yet
    watch(task, inflight=["c.mp4"])
    sup.died(task, "worker killed by signal 9")
    task = sup.next()
    watch(task, phase="setup")
    sup.died(task, "worker died")
    assert sup.next() is task and task.setup_deaths == 1 and task.deaths == 2

    n = SYSTEMIC_ITEMS
    sup = Supervisor(Job(name="s", watch_dir=tmp_path), [Partition(f"r{i}", {}) for i in range(n)])
    for i in range(n - 1):  # a partition's only item kills its worker twice, then is its failed row
        for _ in range(2):
            task = sup.next()
            watch(task, inflight=[f"r{i}.mp4"])
            sup.died(task, "worker killed by signal 9 (SIGKILL: out of memory?)")
        task = sup.next()
        watch(task, started=0)
        sup.done(task)  # a few hostile files first: not yet systemic
    with pytest.raises(SystemicError, match="every item tried so far stopped its worker"):
        for _ in range(2):  # the last one's too: no item has finished anywhere
            task = sup.next()
            watch(task, inflight=[f"r{n - 1}.mp4"])
            sup.died(task, "worker killed by signal 9 (SIGKILL: out of memory?)")


def test_threads_per_worker_auto_shares_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from ltxa_data.executors import jobs
    from ltxa_data.recipe import RecipeError

    monkeypatch.setattr(jobs, "usable_cores", lambda: 16)
    assert jobs.worker_threads("auto", 2, 1.0, local=True) == 8
    assert jobs.worker_threads("auto", 3, 1.0, local=True) == 5
    assert jobs.worker_threads("auto", 32, 1.0, local=True) == 1
    assert jobs.worker_threads("auto", 2, 4.0, local=False) == 4  # a Ray actor: the CPUs it asks for
    assert jobs.worker_threads(3, 2, 1.0, local=True) == 3
    base = {"name": "t", "input": {"paths": ["."]}, "output": {"dir": "out"}}
    assert parse_recipe(base).executor.threads_per_worker == "auto"
    assert parse_recipe({**base, "executor": {"threads_per_worker": 4}}).executor.threads_per_worker == 4
    for bad in (0, "many"):
        with pytest.raises(RecipeError, match="threads_per_worker"):
            parse_recipe({**base, "executor": {"threads_per_worker": bad}})
    assert jobs.thread_env(jobs.worker_threads("auto", 4, 1.0, True))["OMP_NUM_THREADS"] == "4"



def test_the_largest_partitions_start_first(tmp_path: Path) -> None:
    """`Stage.cost`: a partition's video seconds (else its rows), by which the build starts the largest first
    so that a stage's last partitions do not leave workers idle."""
    import polars as pl

    from ltxa_data.stages import ScenesStage, ShardStage
    from ltxa_data.stages.base import Partition

    recipe = parse_recipe({"name": "cost", "input": {"paths": [str(tmp_path)]},
                           "output": {"dir": str(tmp_path / "out")}}, base_dir=tmp_path)
    long, short = (Partition(k, {"videos": pl.DataFrame({"duration_s": d})}) for k, d in (("a", [200.0, 40.0]),
                                                                                          ("b", [90.0])))
    assert ScenesStage(recipe).cost(long) == 240.0 and ScenesStage(recipe).cost(short) == 90.0
    assert ShardStage(recipe).cost(Partition("s", {"split": "train", "samples": [{}] * 7})) == 7.0
