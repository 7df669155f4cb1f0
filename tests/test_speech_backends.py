"""The production speech backends (pyannote.audio, speechbrain ECAPA) with random-weight checkpoints
written in the real on-disk layouts, run offline inside the build; and diarization scoring."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from ltxa_data.backends.base import turns_from_tracks
from ltxa_data.cli import main, pyannote_sample_dir
from ltxa_data.corpus.scoring import read_rttm, score_diarization
from ltxa_data.errors import SystemicError
from ltxa_data.media import read_audio
from ltxa_data.pipeline import build
from ltxa_data.recipe import PyannoteConfig, Recipe, RecipeError, SpeechbrainConfig, parse_recipe
from ltxa_data.reporting.verify import verify_build
from ltxa_data.stages.embed import speech_windows
from ltxa_data.storage import read_frame, table_path

from .conftest import DEMO_QUALITY, recipe_dict, write_recipe
from .fixtures.random_ecapa import write_random_ecapa
from .fixtures.random_pyannote import write_random_pipeline

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight model folders: pyannote community-1 biased to one clean speaker, the 3.1 layout
    (random output: two overlapping speakers everywhere) and speechbrain ECAPA."""
    root = tmp_path_factory.mktemp("models")
    return {
        "community-1": write_random_pipeline(root / "community-1", single_speaker=True),
        "3.1": write_random_pipeline(root / "pyannote-3.1", layout="3.1"),
        "ecapa": write_random_ecapa(root / "ecapa"),
    }


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any HTTP(S) request from this process or its spawned workers fails at once; no hub token."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def talking_heads(corpus_dirs: list[Path], out: Path, pyannote: Path, ecapa: Path) -> Recipe:
    """recipes/talking_heads.yaml as shipped, pointed at local model folders and a small corpus. Shards carry
    media only (tests/test_guide.py builds latents with the production backends); the material-quality floors,
    set for real footage, take the demo's for drawn faces and espeak voices."""
    data = yaml.safe_load((ROOT / "recipes" / "talking_heads.yaml").read_text())
    for section, values in DEMO_QUALITY.items():
        data[section].update(values)
    data["input"]["paths"] = [str(d) for d in corpus_dirs]
    data["output"] = {"dir": str(out / "build")}
    data["executor"].update(workers=2, threads_per_worker=1)
    data["scan"].update(files_per_partition=4, min_short_side=128)
    data["diarize"]["videos_per_partition"] = 3
    data["diarize"]["pyannote"].update(model=str(pyannote), segmentation_step=0.5)
    data["embed"]["videos_per_partition"] = 3
    data["embed"]["speechbrain_ecapa"].update(model=str(ecapa), batch_size=8)
    data["encode"] = {"backend": "none"}
    return parse_recipe(data, base_dir=out)


@pytest.mark.slow
def test_talking_heads_recipe_builds_offline_with_pyannote_and_ecapa(
        corpus: Path, models: dict[str, Path], tmp_path: Path, offline: None) -> None:
    recipe = talking_heads([corpus / "spk0", corpus / "spk1"], tmp_path, models["community-1"], models["ecapa"])
    build(recipe, progress=False)
    assert verify_build(recipe) == []
    m = recipe.manifests_dir
    videos = read_frame(m, "videos", ok_only=True)
    turns = read_frame(m, "turns", ok_only=True)
    voices = read_frame(m, "voices", ok_only=True)
    assert videos.height >= 6
    assert set(turns["video_id"]) == set(videos["video_id"]), "every video went through pyannote"
    assert not turns["overlap"].any(), "the single-speaker pipeline finds no overlapped speech"

    # The stage's turns are exactly what the pipeline itself says about the same waveform.
    from ltxa_data.backends.pyannote_diarizer import PyannoteDiarizer
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder

    video = videos.row(0, named=True)
    audio = read_audio(video["path"], SR, channels=1, duration_s=video["duration_s"])[0]
    direct = PyannoteDiarizer(recipe.diarize.pyannote, recipe.base_dir)(audio, SR)
    staged = turns.filter(pl.col("video_id") == video["video_id"]).sort("start_s")
    assert [(t.speaker, t.start, t.end) for t in direct] == list(
        zip(staged["speaker"], staged["start_s"], staged["end_s"], strict=True))

    # One ECAPA embedding per local speaker: the L2-normalised mean of its windows' embeddings.
    emb = np.array(voices["embedding"].to_list(), np.float32)
    assert emb.shape == (voices.height, 192)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    voice = voices.filter(pl.col("video_id") == video["video_id"]).row(0, named=True)
    spans = [(t.start, t.end) for t in direct if t.speaker == voice["speaker"] and not t.overlap]
    windows = speech_windows(spans, recipe.embed.window_s, recipe.embed.max_windows)
    assert voice["num_windows"] == len(windows) >= 2
    clips = [audio[round(s * SR) : round(s * SR) + round((e - s) * SR)] for s, e in windows]
    mean = SpeechbrainEmbedder(recipe.embed.speechbrain_ecapa, recipe.base_dir).embed(clips, SR).mean(axis=0)
    np.testing.assert_allclose(np.array(voice["embedding"]), mean / np.linalg.norm(mean), atol=1e-5)

    assert read_frame(m, "pairs", ok_only=True).height > 0
    assert list((recipe.output_dir / "shards").rglob("*.tar"))


def test_overlapped_speech_is_marked_and_kept_out_of_embeddings(
        corpus: Path, models: dict[str, Path], tmp_path: Path, offline: None) -> None:
    """The 3.1 layout loads offline; its random weights hear two speakers at once everywhere."""
    recipe = talking_heads([corpus / "spk2" / "clip_00.mp4"], tmp_path, models["3.1"], models["ecapa"])
    build(recipe, only=["scan", "diarize", "embed"], progress=False)
    turns = read_frame(recipe.manifests_dir, "turns", ok_only=True)
    assert turns["speaker"].n_unique() == 2 and turns["overlap"].all()
    voices = read_frame(recipe.manifests_dir, "voices")
    assert voices.height == 2 and (voices["status"] == "skipped").all()
    assert voices["error"].str.contains("less clean speech than embed.min_speech_s").all()


def _drop(path: Path) -> None:
    path.unlink()


def _config_edit(key: str, value: str | None) -> object:
    def edit(path: Path) -> None:
        config = yaml.safe_load(path.read_text())
        if value is None:
            del config["pipeline"]["params"][key]
        else:
            config["pipeline"]["params"][key] = value
        path.write_text(yaml.safe_dump(config))
    return edit


@pytest.mark.parametrize(("which", "file", "change", "message"), [
    ("community-1", "plda/plda.npz", _drop, "missing plda/plda.npz"),
    ("community-1", "embedding/pytorch_model.bin", _drop, "missing embedding/pytorch_model.bin"),
    ("community-1", "config.yaml", _drop, "missing config.yaml"),
    ("community-1", "config.yaml", _config_edit("plda", None), "a `plda: $model/plda` entry"),
    ("community-1", "config.yaml", _config_edit("segmentation", "pyannote/segmentation-3.0"),
     "names 'pyannote/segmentation-3.0', which is on the hub"),
    ("ecapa", "embedding_model.ckpt", _drop, "missing embedding_model.ckpt"),
    ("ecapa", "hyperparams.yaml", _drop, "missing hyperparams.yaml"),
])
def test_an_incomplete_model_folder_is_refused_before_any_work(
        corpus: Path, models: dict[str, Path], tmp_path: Path, which: str, file: str, change, message: str) -> None:
    broken = tmp_path / "model"
    shutil.copytree(models[which], broken)
    change(broken / file)
    pyannote, ecapa = (broken, models["ecapa"]) if which != "ecapa" else (models["community-1"], broken)
    recipe = talking_heads([corpus / "spk0"], tmp_path, pyannote, ecapa)
    with pytest.raises(RecipeError) as e:
        build(recipe, progress=False)
    assert message in str(e.value) and str(broken) in str(e.value)
    assert not table_path(recipe.manifests_dir, "videos").exists(), "nothing ran"


def test_hub_ids_need_a_token_and_paths_must_exist(corpus: Path, models: dict[str, Path], tmp_path: Path,
                                                   offline: None) -> None:
    recipe = talking_heads([corpus / "spk0"], tmp_path, Path("/nowhere/pyannote"), models["ecapa"])
    with pytest.raises(RecipeError, match="there is no model folder /nowhere/pyannote"):
        build(recipe, progress=False)
    data = recipe_dict(corpus, diarize={"backend": "pyannote"}, embed={"backend": "speechbrain_ecapa"})
    hub = parse_recipe(data, base_dir=tmp_path)  # defaults: the hub ids
    with pytest.raises(RecipeError, match=r"needs a token in \$HF_TOKEN"):
        build(hub, progress=False)


def _cached_snapshot(cache: Path, repo: str) -> Path:
    """`repo` as huggingface_hub's cache holds a downloaded snapshot."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "hyperparams.yaml").write_text("{}")
    return snapshot


def test_hub_ids_are_refused_in_preflight_unless_cached_or_reachable(
        corpus: Path, tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a token but no network (requests go to a closed local port), or with HF_HUB_OFFLINE, a hub id that
    is not in the local cache is refused before any work, saying what to do; a cached one is not."""
    from ltxa_data.backends import backend_problems

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    data = recipe_dict(corpus, diarize={"backend": "pyannote"}, embed={"backend": "speechbrain_ecapa"})
    recipe = parse_recipe(data, base_dir=tmp_path)  # defaults: the hub ids
    problems = backend_problems(recipe)
    assert [p.split(":")[0] for p in problems] == ["diarize.pyannote.model", "embed.speechbrain_ecapa.model"]
    for p in problems:
        assert "the Hugging Face hub cannot be reached" in p and "hf download" in p and "--local-dir models/" in p, p
    with pytest.raises(RecipeError, match="cannot be reached"):
        build(recipe, progress=False)
    assert not table_path(recipe.manifests_dir, "videos").exists(), "nothing ran"

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems = backend_problems(recipe)
    assert len(problems) == 2 and all("not in the local hub cache and HF_HUB_OFFLINE is set" in p for p in problems)
    _cached_snapshot(tmp_path / "hub", "speechbrain/spkrec-ecapa-voxceleb")
    problems = backend_problems(recipe)
    assert [p.split(":")[0] for p in problems] == ["diarize.pyannote.model"], "a cached repository loads offline"


def test_an_ecapa_checkpoint_that_does_not_fit_its_model_is_refused(models: dict[str, Path], tmp_path: Path,
                                                                    offline: None) -> None:
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder

    broken = tmp_path / "ecapa"
    shutil.copytree(models["ecapa"], broken)
    state = torch.load(broken / "embedding_model.ckpt", weights_only=True)
    state["extra.weight"] = state.pop("fc.conv.weight")
    torch.save(state, broken / "embedding_model.ckpt")
    with pytest.raises(SystemicError, match=r"1 missing keys \['fc.conv.weight'\], 1 unexpected keys \['extra"):
        SpeechbrainEmbedder(SpeechbrainConfig(model=str(broken), device="cpu"), tmp_path)


def test_ecapa_embeddings_equal_the_model_on_each_window_alone(models: dict[str, Path], offline: None) -> None:
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder

    rng = np.random.default_rng(0)
    windows = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (32000, 32000, 32000, 24000, 40000, 24000)]
    embedder = SpeechbrainEmbedder(SpeechbrainConfig(model=str(models["ecapa"]), batch_size=4), Path("."))
    batched = embedder.embed(windows, SR)
    assert batched.shape == (6, 192)
    with torch.inference_mode():
        alone = np.stack([embedder.encoder.encode_batch(torch.from_numpy(w)[None])[0, 0].numpy() for w in windows])
    np.testing.assert_allclose(batched, alone / np.linalg.norm(alone, axis=1, keepdims=True), atol=1e-5)


def test_local_models_turn_the_hub_off_only_while_loading_and_telemetry_off(
        models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from ltxa_data.backends.pyannote_diarizer import PyannoteDiarizer

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    PyannoteDiarizer(PyannoteConfig(model=str(models["community-1"]), device="cpu"), Path("."))
    import huggingface_hub.constants
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    assert "HF_HUB_OFFLINE" not in os.environ and not huggingface_hub.constants.HF_HUB_OFFLINE, \
        "a hub model loaded later in this process must still reach the hub"
    assert not is_metrics_enabled()


def test_a_missing_local_folder_is_not_mistaken_for_a_hub_id(tmp_path: Path) -> None:
    from ltxa_data.backends.model_source import model_source

    (tmp_path / "models").mkdir()
    with pytest.raises(SystemicError, match=f"there is no model folder {tmp_path}/models/pyannote"):
        model_source("models/pyannote", tmp_path, "diarize.pyannote.model")
    assert model_source("pyannote/speaker-diarization-community-1", tmp_path, "x").hub_id is not None


def test_a_folder_named_from_the_working_directory_is_refused_with_the_path_that_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's layout: models/ at the root, recipes in recipes/. `models/pyannote` written in a recipe
    resolves against recipes/; the refusal says so and names the reference that works."""
    from ltxa_data.backends.model_source import model_source

    (tmp_path / "models" / "pyannote").mkdir(parents=True)
    (tmp_path / "recipes").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemicError) as e:
        model_source("models/pyannote", tmp_path / "recipes", "diarize.pyannote.model")
    assert str(e.value) == (
        f"diarize.pyannote.model: there is no model folder {tmp_path}/recipes/models/pyannote (relative model "
        f"paths resolve against the recipe's folder, {tmp_path}/recipes); the folder {tmp_path}/models/pyannote "
        "exists: write '../models/pyannote' or its absolute path")
    assert model_source("../models/pyannote", tmp_path / "recipes", "x").local_dir == tmp_path / "models" / "pyannote"


def test_pyannote_speaker_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="min_speakers"):
        PyannoteConfig(min_speakers=3, max_speakers=2)


def test_turns_from_tracks_marks_overlap_clips_and_names_speakers_by_first_appearance() -> None:
    turns = turns_from_tracks([("B", 3, 8), ("A", -1, 5), ("A", 7, 12), ("A", 11, 12.5), ("C", 20, 30)], 25)
    assert [(t.speaker, t.start, t.end, t.overlap) for t in turns] == [
        ("S0", 0.0, 3.0, False), ("S0", 3.0, 5.0, True), ("S1", 3.0, 5.0, True), ("S1", 5.0, 7.0, False),
        ("S0", 7.0, 8.0, True), ("S1", 7.0, 8.0, True), ("S0", 8.0, 12.5, False), ("S2", 20.0, 25.0, False)]


def test_der_is_zero_for_the_reference_itself_and_one_when_everything_is_missed() -> None:
    ref = read_rttm(pyannote_sample_dir() / "sample.rttm")
    relabelled = {"sample": [(f"x{spk}", s, e) for spk, s, e in ref["sample"]]}
    extent = {"sample": 30.0}
    assert score_diarization(ref, relabelled, extent)[-1].der == pytest.approx(0.0)
    missed = score_diarization(ref, {}, extent)[-1]
    assert missed.der == pytest.approx(1.0) and missed.missed_s == pytest.approx(missed.scored_s)


def test_score_diarization_on_the_pyannote_sample_and_on_a_build(built: Recipe, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    recipe_path = write_recipe(tmp_path, recipe_dict(Path(built.input.paths[0])))
    assert main(["score", "diarization", str(recipe_path), "--pyannote-sample"]) == 0
    out = capsys.readouterr().out
    der = {line.split()[0]: float(line.split()[-1].rstrip("%")) for line in out.splitlines()
           if line.startswith(("sample", "TOTAL"))}
    assert set(der) == {"sample", "TOTAL"} and 0 < der["sample"] < 100

    built_recipe = Path(built.base_dir) / "recipe.yaml"
    assert main(["score", "diarization", str(built_recipe)]) == 0
    lines = capsys.readouterr().out.splitlines()
    scored = [line.split() for line in lines if line.startswith("spk")]
    videos = read_frame(built.manifests_dir, "videos", ok_only=True)
    assert len(scored) == videos.height, "every ok video is matched to its ground truth"
    total = next(line.split() for line in lines if line.startswith("TOTAL"))
    assert float(total[1]) > 0.5 * videos["duration_s"].sum(), "the scored time is the videos' speech and silence"
    assert float(total[-1].rstrip("%")) < 20, "silero + resemblyzer on the synthetic corpus"


def test_reference_uris_match_videos_by_path_and_refuse_ambiguity(tmp_path: Path) -> None:
    from ltxa_data.corpus.scoring import match_recordings

    videos = pl.DataFrame({"video_id": ["a", "b", "c"], "path": ["/d/x/clip.mp4", "/d/y/clip.mp4", "/d/y/talk.mp4"],
                           "rel_path": ["x/clip.mp4", "y/clip.mp4", "y/talk.mp4"]})
    assert match_recordings(videos, {"x/clip", "/d/y/clip", "talk", "other"}) == {
        "a": "x/clip", "b": "/d/y/clip", "c": "talk"}
    assert match_recordings(videos, {"clip"}) == {}, "a file name shared by two videos names neither"
    rttm = tmp_path / "ref.rttm"
    rttm.write_text("\ufeffSPEAKER talk 1 0.50 1.25 <NA> <NA> A <NA> <NA>\nSPEAKER talk 1 2,0 1 <NA> <NA> B <NA>\n")
    with pytest.raises(ValueError, match=f"{rttm}:2: not an RTTM SPEAKER line"):
        read_rttm(rttm)
    rttm.write_text("\ufeffSPEAKER talk 1 0.50 1.25 <NA> <NA> A <NA> <NA>\n")
    assert read_rttm(rttm) == {"talk": [("A", 0.5, 1.75)]}, "a byte-order mark does not hide the first line"
    with pytest.raises(ValueError, match="no recording to score"):
        score_diarization({}, {}, {})


@pytest.mark.gpu
def test_both_backends_agree_on_gpu_and_cpu(models: dict[str, Path], offline: None) -> None:
    from ltxa_data.backends.pyannote_diarizer import PyannoteDiarizer
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(SR * 12) * 0.1).astype(np.float32)
    turns = {d: PyannoteDiarizer(PyannoteConfig(model=str(models["community-1"]), device=d), Path("."))(audio, SR)
             for d in ("cpu", "cuda")}
    assert [t.speaker for t in turns["cpu"]] == [t.speaker for t in turns["cuda"]]
    for a, b in zip(turns["cpu"], turns["cuda"], strict=True):
        assert abs(a.start - b.start) < 0.05 and abs(a.end - b.end) < 0.05
    emb = {d: SpeechbrainEmbedder(SpeechbrainConfig(model=str(models["ecapa"]), device=d), Path("."))
           .embed([audio[:48000], audio[SR:SR + 48000]], SR) for d in ("cpu", "cuda")}
    np.testing.assert_allclose(emb["cpu"], emb["cuda"], atol=1e-3)


def test_an_embedding_fault_fails_only_its_video(corpus: Path, tmp_path: Path) -> None:
    """The partition's batched embedding call fails; each video is retried alone, so only the video
    whose windows the model rejects gets a failed row."""
    from ltxa_data.stages.base import Partition
    from ltxa_data.stages.embed import EmbedStage

    class PickyEmbedder:
        dim = 4

        def embed(self, windows: list[np.ndarray], sample_rate: int) -> np.ndarray:
            if any(len(w) == 0 for w in windows):
                raise ValueError("cannot embed an empty window")
            return np.array([[w.mean(), w.std(), w.max(), 1.0] for w in windows], np.float32)

    from ltxa_data.ids import content_fingerprint, video_id_of

    clips = sorted((corpus / "spk0").glob("clip_*.mp4"))[:3]
    stage = EmbedStage(parse_recipe(recipe_dict(corpus), base_dir=tmp_path))
    ids = [video_id_of(content_fingerprint(c, stage.recipe.scan.fingerprint_bytes)) for c in clips]  # as scanned
    videos = pl.DataFrame({"video_id": ids, "path": [str(c) for c in clips], "rel_path": [c.name for c in clips]})
    # b's speech lies past the end of its audio: its windows are empty.
    turns = pl.DataFrame({"video_id": ids, "speaker": ["S0"] * 3, "start_s": [0.5, 60.0, 0.5],
                          "end_s": [5.0, 65.0, 5.0], "overlap": [False] * 3})
    stage.embedder = PickyEmbedder()
    by_id = {r["video_id"]: r for r in stage.process(Partition("p", {"videos": videos, "turns": turns}, "h")).rows}
    rows = dict(zip("abc", (by_id[i] for i in ids), strict=True))
    assert rows["a"]["status"] == rows["c"]["status"] == "ok" and len(rows["a"]["embedding"]) == 4
    assert rows["b"]["status"] == "failed" and "cannot embed an empty window" in rows["b"]["error"]
    assert clips[1].name in rows["b"]["error"]


def test_hub_ids_load_through_the_hub_with_the_token(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """No network here: the libraries' loaders are wrapped to record how they are called for a hub
    id, then load the local random-weight copies."""
    from pyannote.audio import Pipeline
    from speechbrain.inference.speaker import EncoderClassifier

    from ltxa_data.backends.pyannote_diarizer import PyannoteDiarizer
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder

    monkeypatch.setenv("MY_TOKEN", "hf_secret")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls: list[tuple[str, dict]] = []
    load_pipeline, load_encoder = Pipeline.from_pretrained, EncoderClassifier.from_hparams

    def fake_pipeline(checkpoint: str, **kw: object) -> object:
        calls.append((checkpoint, {**kw, "offline": os.environ.get("HF_HUB_OFFLINE")}))
        return load_pipeline(str(models["community-1"]))

    def fake_encoder(source: str, **kw: object) -> object:
        calls.append((source, {**kw, "offline": os.environ.get("HF_HUB_OFFLINE")}))
        local = str(models["ecapa"])
        return load_encoder(source=local, savedir=None, overrides={"pretrained_path": local},
                            run_opts=kw["run_opts"])

    monkeypatch.setattr(Pipeline, "from_pretrained", fake_pipeline)
    monkeypatch.setattr(EncoderClassifier, "from_hparams", fake_encoder)
    PyannoteDiarizer(PyannoteConfig(token_env="MY_TOKEN", device="cpu"), Path("."))
    SpeechbrainEmbedder(SpeechbrainConfig(token_env="MY_TOKEN", device="cpu"), Path("."))
    (hub_pipeline, pipeline_kw), (hub_encoder, encoder_kw) = calls
    assert hub_pipeline == "pyannote/speaker-diarization-community-1" and pipeline_kw["token"] == "hf_secret"
    assert hub_encoder == "speechbrain/spkrec-ecapa-voxceleb" and encoder_kw["fetch_config"].token == "hf_secret"
    assert pipeline_kw["offline"] is None and encoder_kw["offline"] is None, "hub ids may use the network"
