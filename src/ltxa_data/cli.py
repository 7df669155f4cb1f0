"""The `ltxa-data` command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .analysis.splits import SPLITS
from .errors import SystemicError
from .recipe import AUDIO_SAMPLE_RATE, TARGET_FRAMES, Recipe, RecipeError, load_recipe
from .schemas import EVAL_TABLES, TABLES
from .storage import read_frame

DEFAULT_RECIPE = "recipes/demo.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ltxa-data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="run the pipeline (resumes where it stopped)")
    p.add_argument("recipe")
    p.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages (`ltxa-data status` lists them)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("status", help="per stage: partitions done, rows ok/skipped/failed, top failure reasons")
    p.add_argument("recipe")

    p = sub.add_parser("verify", help="check the build's invariants; exit 1 naming every violation")
    p.add_argument("recipe")
    p.add_argument("--no-media", action="store_true", help="skip decoding the media inside the shards")

    p = sub.add_parser("corpus", help="generate the recipe's sample corpus (its `corpus` section)")
    p.add_argument("recipe")

    p = sub.add_parser("demo", help="generate the sample corpus, build it, verify it, and summarise")
    p.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("score", help="score identity grouping or diarization against ground truth",
                       description="identities: purity, ARI, over-split and merged identities of the build. "
                       "diarization: DER (pyannote.metrics) of the build's turns, or of the recipe's diarizer "
                       "run on --audio files, against an RTTM.")
    p.add_argument("what", choices=["identities", "diarization"])
    p.add_argument("recipe")
    p.add_argument("--truth", help="identities: ground_truth.json of a generated corpus (default: the recipe's "
                   "corpus), or a CSV with columns video, identity")
    p.add_argument("--rttm", help="diarization: reference RTTM; uris are file names without extension (for the "
                   "build: paths relative to the input folder). Default: the generated corpus's ground truth")
    p.add_argument("--audio", nargs="+", metavar="FILE", help="diarization: run the recipe's diarizer on these "
                   "files instead of reading the build")
    p.add_argument("--pyannote-sample", action="store_true", help="diarization: the two-speaker sample that "
                   "pyannote.audio ships (its wav and RTTM)")
    p.add_argument("--collar", type=float, default=0.0, help="diarization: total width in seconds of the "
                   "unscored zone centred on each reference boundary (pyannote.metrics; 0.5 forgives +-0.25 s)")
    p.add_argument("--skip-overlap", action="store_true", help="diarization: do not score overlapped speech")

    p = sub.add_parser("export", help="write a build's latents in a trainer's folder layout, its pairs as the "
                       "input of ltx-trainer's process_dataset.py, or its swap-eval cases to generate",
                       description="ltx-trainer: OUT/<split>/.precomputed/{latents,audio_latents,"
                       "reference_audio_latents,conditions[,video_masks]}/<key>.pt, paired by relative path; every "
                       "conditions file links to the caption's (export.conditions, or computed once from export.caption"
                       " with the Gemma folder export.text_encoder). The build needs encode.backend: "
                       "ltx. ltx-trainer-dataset: OUT/<split>/dataset.jsonl (caption, video, audio, reference_audio"
                       "[, video_mask]) with the mp4s and wavs beside it, for process_dataset.py; media-only builds "
                       "do. swap-eval: the build's swap-eval cases to generate: OUT/runs.jsonl (one generation per "
                       "line: caption, seed, reference wav, output name), OUT/cases.jsonl, OUT/references/*.wav as the "
                       "shards carry them, and OUT/validation.yaml (ltx-trainer's validation samples for every run).")
    p.add_argument("format", choices=["ltx-trainer", "ltx-trainer-dataset", "swap-eval"])
    p.add_argument("out")
    p.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"the build's recipe (default {DEFAULT_RECIPE})")
    p.add_argument("--split", nargs="+", choices=["train", "val", "test"], help="splits to export (default: all)")
    p.add_argument("--references", choices=["first", "stack", "expand"], help="override export.references "
                   "(ltx-trainer-dataset: first or expand)")
    p.add_argument("--video-masks", choices=["none", "face", "everything"], help="override export.video_masks: "
                   "face = the face is generated, the rest kept as conditioning; everything = all generated")
    p.add_argument("--conditions", help="override export.conditions: the caption's conditions .pt (ltx-trainer)")

    p = sub.add_parser("eval", help="score what a model generated for the swap-eval cases: does the reference move "
                       "the voice and the face toward the right person, beyond what changing only the seed does?",
                       description="Reads one generated video (with audio) per run of `export swap-eval` from "
                       "--generated (<run_id>.mp4, or the trainer's step_<step>_<i>.mp4 with --trainer-step), measures "
                       "its voice (the build's embedder, against each identity's mean voice) and its face (the build's "
                       "descriptor, against each identity's dominant face), scores every case against the seed-swap "
                       "floor with bootstrap intervals, writes output.dir/evals/<name>/{eval_runs,eval,summary}"
                       ".parquet and adds the eval to the build report.")
    p.add_argument("recipe")
    p.add_argument("--generated", required=True, help="the folder of generated files")
    p.add_argument("--name", help="the eval's name (default: the folder's name; with --trainer-step, step<STEP>)")
    p.add_argument("--trainer-step", type=int, metavar="STEP", help="read ltx-trainer's validation samples "
                   "step_<STEP>_<i>.mp4 (validation.yaml of the export: sample i is run i of runs.jsonl)")
    p.add_argument("--no-report", action="store_true", help="do not write the build report again")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("report", help="write the build's HTML report (funnel, plots, contact sheets, pairs to play)",
                       description="A static HTML page of the build that opens from disk: the funnel with the "
                       "reasons rows were dropped, plots, a contact sheet per split, a sample of pairs with players, "
                       "the swap-eval cases, the rejected files, identity quality against ground truth when known.")
    p.add_argument("recipe")
    p.add_argument("--out", help="the report folder (default: report.dir, or report/ in the output folder)")
    p.add_argument("--truth", help="ground truth for identity quality: a corpus's ground_truth.json or a CSV with "
                   "columns video, identity (default: the generated corpus's, when there is one)")

    p = sub.add_parser("explain", help="one sample's whole story: source, window, turns, voice, identity, "
                       "references, split, scores against thresholds, lineage",
                       description="Prints, from the manifests and the sample's shard json, why the sample exists: "
                       "its source video (fingerprint, probe facts, scene cuts), why this window (and why the video's "
                       "other windows were skipped), the speech turns, the voice and identity, why these references "
                       "(and not the identity's other candidates), the split, every score next to its threshold, and "
                       "the lineage (source files, models and their sha256, toolkit version, recipe hash).")
    p.add_argument("recipe")
    p.add_argument("key", help="a sample key (= its target_id), a skipped target's id, or an unambiguous prefix")

    p = sub.add_parser("remove", help="take down a person or a video: every row, sample and shard derived from "
                       "them goes, and later builds keep them out",
                       description="Records the removal in manifests/removals.parquet (the files' paths and content "
                       "fingerprints, their perceptual fingerprints, the person's voice embeddings), rebuilds what it "
                       "touched (samples whose reference came from them get another reference or are dropped; "
                       "affected shards are rewritten atomically), and checks that nothing derived from them "
                       "remains. Later builds leave out the files, their copies, and new videos with the person's "
                       "voice or label. Safe to kill: run it again.")
    p.add_argument("recipe")
    p.add_argument("--identity", nargs="+", default=[], metavar="ID", help="identity ids (identities table)")
    p.add_argument("--video", nargs="+", default=[], metavar="PATH", help="video files (absolute, or relative to "
                   "their input root)")
    p.add_argument("--label", nargs="+", default=[], metavar="NAME", help="labels (input.label_regex, "
                   "identify.labels_csv)")
    p.add_argument("--from", dest="from_file", metavar="FILE", help="a file of requests, one per line: "
                   "`identity ID`, `label NAME` or `video PATH` (# comments)")
    p.add_argument("--reason", required=True, help="why (recorded with the removal)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("schemas", help="print the manifest schemas")

    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (SystemicError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def cmd_build(args: argparse.Namespace) -> int:
    from .pipeline import build

    recipe = load_recipe(args.recipe)
    t0, started = time.perf_counter(), time.time()
    reports = build(recipe, only=args.only, progress=not args.no_progress)
    for r in reports:
        counts = " ".join(f"{k}={v}" for k, v in sorted(r.counts.items()))
        print(f"{r.stage:>14} -> {r.table:<14} ran {r.ran}/{r.partitions} partitions in {r.seconds:.1f} s  ({counts})")
    print(f"build '{recipe.name}' done in {time.perf_counter() - t0:.1f} s; manifests in {recipe.manifests_dir}")
    index = recipe.report_dir / "index.html"
    if recipe.report.enabled and not args.only and index.exists():
        print(f"report: {index}" + ("" if index.stat().st_mtime >= started else " (unchanged: nothing it shows "
                                                                                "changed)"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .reporting.status import format_status, stage_statuses

    recipe = load_recipe(args.recipe)
    print(format_status(recipe, stage_statuses(recipe)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .reporting.verify import near_duplicate_identities, verify_build

    recipe = load_recipe(args.recipe)
    problems = verify_build(recipe, check_media=not args.no_media)
    for p in problems:
        print(f"violation: {p}")
    for w in near_duplicate_identities(recipe):
        print(f"warning: {w}")
    if problems:
        print(f"verify: {len(problems)} violation(s)", file=sys.stderr)
        return 1
    print("verify: all invariants hold")
    return 0


def _generate(recipe: Recipe) -> Path:
    from .corpus.generate import generate_corpus

    if recipe.corpus is None:
        raise RecipeError(f"recipe '{recipe.name}' has no `corpus` section to generate")
    out = recipe.resolve(recipe.input.paths[0])
    return generate_corpus(out, recipe.corpus)


def cmd_corpus(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    t0 = time.perf_counter()
    gt = _generate(recipe)
    print(f"corpus ready in {time.perf_counter() - t0:.1f} s: {gt.parent} (ground truth: {gt.name})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .reporting.summary import summarize

    recipe = load_recipe(args.recipe)
    t0 = time.perf_counter()
    gt = _generate(recipe)
    print(f"corpus: {gt.parent} ({time.perf_counter() - t0:.1f} s)")
    rc = cmd_build(argparse.Namespace(recipe=args.recipe, only=None, no_progress=args.no_progress))
    rc = rc or cmd_verify(argparse.Namespace(recipe=args.recipe, no_media=False))
    print(summarize(recipe, gt))
    if rc == 0:
        from .reporting.contact_sheet import write_contact_sheet

        print(f"contact sheet: {write_contact_sheet(recipe, recipe.output_dir / 'contact_sheet.png')}")
    return rc


def cmd_score(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    try:
        return _score_diarization(args, recipe) if args.what == "diarization" else _score_identities(args, recipe)
    except ValueError as e:  # references that cannot be matched or parsed
        print(f"error: {e}", file=sys.stderr)
        return 2


def _score_identities(args: argparse.Namespace, recipe: Recipe) -> int:
    from .corpus.scoring import (
        default_truth,
        face_agreement,
        label_agreement,
        load_truth,
        score_face_gates,
        score_identities,
        score_quality_gates,
    )
    m = recipe.manifests_dir
    identities = read_frame(m, "identities", ok_only=True)
    truth_path = Path(args.truth) if args.truth else default_truth(recipe)
    truth, gt = load_truth(m, truth_path)
    s = score_identities(identities, truth)
    print(f"voices scored: {s.voices}\ntrue identities: {s.true_identities}\nfound identities: "
          f"{s.found_identities}\npurity: {s.purity:.4f}\ninverse purity: {s.inverse_purity:.4f}\n"
          f"adjusted Rand index: {s.ari:.4f}\nover-split true identities: {s.split_identities}\n"
          f"found identities merging several true ones: {s.merged_identities}")
    for line in label_agreement(identities):
        print(line)
    for line in face_agreement(read_frame(m, "targets")):
        print(line)
    if gt is not None:
        videos = read_frame(m, "videos", ok_only=True)
        for gate in score_face_gates(read_frame(m, "targets"), videos, gt):
            print(f"vs ground truth, {gate.line()}")
        for line in score_quality_gates(read_frame(m, "targets"), read_frame(m, "references"), videos, gt):
            print(line)
    return 0


def _score_diarization(args: argparse.Namespace, recipe: Recipe) -> int:
    from collections import Counter

    import polars as pl

    from .corpus.scoring import Segments, read_rttm, rttm_from_ground_truth, score_diarization

    audio = [Path(a) for a in args.audio or []]
    rttm = Path(args.rttm) if args.rttm else None
    if args.pyannote_sample:
        audio, rttm = [pyannote_sample_dir() / "sample.wav"], pyannote_sample_dir() / "sample.rttm"
    hypothesis: dict[str, Segments] = {}
    extent: dict[str, float] = {}
    if audio:
        from .backends import load_diarizer
        from .media import read_audio
        if rttm is None:
            raise FileNotFoundError("--audio needs --rttm, the reference for those files")
        reference = read_rttm(rttm)
        stems = Counter(f.stem for f in audio)
        if max(stems.values()) > 1:
            shared = sorted(s for s, n in stems.items() if n > 1)
            raise ValueError(f"--audio files share names, so their uris collide: {shared}")
        unknown = [str(f) for f in audio if f.stem not in reference]
        if unknown:
            raise FileNotFoundError(f"{rttm} has no uri for {', '.join(unknown)} (uris are file names without "
                                    "extension)")
        diarizer = load_diarizer(recipe)
        for f in audio:
            wav = read_audio(f, AUDIO_SAMPLE_RATE, channels=1)[0]
            extent[f.stem] = len(wav) / AUDIO_SAMPLE_RATE
            hypothesis[f.stem] = [(t.speaker, t.start, t.end) for t in diarizer(wav, AUDIO_SAMPLE_RATE)]
        reference = {uri: reference[uri] for uri in extent}
        print(f"diarizer: {recipe.diarize.backend}; reference: {rttm}")
    else:
        from .corpus.generate import load_ground_truth
        from .corpus.scoring import match_recordings
        m = recipe.manifests_dir
        videos = read_frame(m, "videos", ok_only=True)
        turns = read_frame(m, "turns", ok_only=True)
        corpus_dir = recipe.resolve(recipe.input.paths[0])
        reference = read_rttm(rttm) if rttm is not None else rttm_from_ground_truth(load_ground_truth(corpus_dir))
        uri_of = match_recordings(videos, set(reference), roots=(corpus_dir,))
        extent = {uri_of[v["video_id"]]: v["duration_s"] for v in videos.iter_rows(named=True)
                  if v["video_id"] in uri_of}
        for t in turns.filter(pl.col("video_id").is_in(list(uri_of))).iter_rows(named=True):
            hypothesis.setdefault(uri_of[t["video_id"]], []).append((t["speaker"], t["start_s"], t["end_s"]))
        if videos.height > len(uri_of):
            print(f"{videos.height - len(uri_of)} ok videos of the build have no reference and are not scored")
        if len(reference) > len(uri_of):
            print(f"{len(reference) - len(uri_of)} reference recordings are not ok videos of this build and are "
                  f"not scored, e.g. {sorted(set(reference) - set(uri_of.values()))[0]}")
        reference = {uri: segs for uri, segs in reference.items() if uri in extent}
        print(f"diarizer: the build's turns ({recipe.diarize.backend}); reference: {rttm or 'corpus ground truth'}")
    scores = score_diarization(reference, hypothesis, extent, args.collar, args.skip_overlap)
    print(f"collar {args.collar} s, overlap {'skipped' if args.skip_overlap else 'scored'}")
    width = max(len("recording"), *(len(s.uri) for s in scores)) + 2
    print(f"{'recording':<{width}}{'scored s':>10}{'false alarm':>13}{'missed':>10}{'confusion':>11}{'DER':>9}")
    for s in scores:
        print(f"{s.uri:<{width}}{s.scored_s:>10.2f}{s.false_alarm_s:>13.2f}{s.missed_s:>10.2f}"
              f"{s.confusion_s:>11.2f}{s.der:>9.2%}")
    return 0


def pyannote_sample_dir() -> Path:
    """The folder of the sample (wav + RTTM) that pyannote.audio ships, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pyannote.audio is not installed; its sample ships with it (the speech extras)")
    return Path(next(iter(spec.submodule_search_locations))) / "sample"


def cmd_export(args: argparse.Namespace) -> int:
    from .ltx.export import (
        DATASET_FILE,
        export_folders,
        export_ltx_trainer,
        export_ltx_trainer_dataset,
        precomputed_samples,
    )
    recipe = load_recipe(Path(args.recipe))
    out = Path(args.out)
    if args.format == "swap-eval":
        return _export_swap_eval(args, recipe, out)
    if args.format == "ltx-trainer-dataset":
        if args.conditions:
            raise SystemicError("export ltx-trainer-dataset: --conditions is for ltx-trainer (process_dataset.py "
                                "encodes the caption itself)")
        rows = export_ltx_trainer_dataset(recipe, out, tuple(args.split or SPLITS), args.references, args.video_masks)
        size = recipe.targets.size
        for split, n in rows.items():
            print(f"{split}: {n} rows in {out / split / DATASET_FILE}")
        print(f"then, in ltx-trainer: scripts/process_dataset.py {out / next(iter(rows)) / DATASET_FILE} "
              f"--resolution-buckets {size}x{size}x{TARGET_FRAMES} --model-path CHECKPOINT --text-encoder-path GEMMA")
        return 0
    written = export_ltx_trainer(recipe, out, tuple(args.split or SPLITS), args.references,
                                 Path(args.conditions) if args.conditions else None, args.video_masks)
    folders = export_folders(args.video_masks or recipe.export.video_masks)
    for split, n in written.items():
        # Read back the way the trainer does (weights_only), a few keys per split.
        back = precomputed_samples(out / split, folders, limit=8)
        print(f"{split}: {n} keys in {out / split / '.precomputed'}; {len(back)} read back with "
              "torch.load(weights_only=True)")
        if len(back) < min(n, 8):
            raise SystemicError(f"export: only {len(back)} of the first {min(n, 8)} samples of {out / split} "
                                "read back with every folder's file")
    return 0


def _export_swap_eval(args: argparse.Namespace, recipe: Recipe, out: Path) -> int:
    from .evaluation.cases import CASES_FILE, RUNS_FILE, VALIDATION_FILE, export_swap_eval

    unused = [f"--{n.replace('_', '-')}" for n in ("split", "references", "video_masks", "conditions")
              if getattr(args, n)]
    if unused:
        raise SystemicError(f"export swap-eval: {', '.join(unused)} apply to the trainer exports, not to swap-eval")
    plan = export_swap_eval(recipe, out)
    kinds = {k: sum(c["kind"] == k for c in plan.cases) for k in ("swap", "seed")}
    print(f"{len(plan.cases)} cases ({kinds['swap']} swap, {kinds['seed']} seed controls) from {len(plan.runs)} "
          f"generations: {out / RUNS_FILE}, {out / CASES_FILE}")
    print(f"generate each line of {RUNS_FILE} (caption, seed, reference_audio) into GENERATED/<output>, or merge "
          f"{out / VALIDATION_FILE} into ltx-trainer's config; then: ltxa-data eval {args.recipe} --generated "
          "GENERATED")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate, format_summary

    recipe = load_recipe(args.recipe)
    result = evaluate(recipe, Path(args.generated), args.name, args.trainer_step, progress=not args.no_progress)
    print(format_summary(result))
    if not args.no_report and recipe.report.enabled:
        from .reporting.report import write_report

        print(f"report: {write_report(recipe)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reporting.report import write_report

    recipe = load_recipe(args.recipe)
    t0 = time.perf_counter()
    index = write_report(recipe, Path(args.out) if args.out else None, Path(args.truth) if args.truth else None)
    print(f"report: {index} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .reporting.explain import ExplainError, explain

    recipe = load_recipe(args.recipe)
    try:
        print(explain(recipe, args.key), end="")
    except ExplainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .commands.remove import Request, parse_requests, take_down

    recipe = load_recipe(args.recipe)
    requests = [Request("identity", v) for v in args.identity] + [Request("video", v) for v in args.video] + [
        Request("label", v) for v in args.label]
    if args.from_file:
        path = Path(args.from_file)
        if not path.is_file():
            raise RecipeError(f"{path}: no such file of removal requests")
        requests += parse_requests(path.read_text(encoding="utf-8").splitlines(), str(path))
    if not requests:
        raise RecipeError("name what to remove: --identity, --video, --label or --from FILE")
    done = take_down(recipe, requests, args.reason, progress=not args.no_progress)
    print(f"removed: {done.removed_videos} video(s) in the removals manifest; {len(done.dropped_samples)} sample(s) "
          f"dropped, {len(done.rereferenced_samples)} given another reference, {done.shards_rewritten} shard "
          f"partition(s) rewritten ({done.samples_rendered} sample(s) rendered, {done.jsons_rewritten} json(s) "
          f"rewritten, the others copied), in "
          f"{done.seconds:.1f} s")
    for p in done.problems:
        print(f"violation: {p}")
    if done.problems:
        print(f"remove: {len(done.problems)} trace(s) of removed items remain", file=sys.stderr)
        return 1
    print("remove: no trace of the removed items remains in the manifests or the shards")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    for t in (*TABLES.values(), *EVAL_TABLES.values()):
        print(f"{t.name}  (one row is {t.row}; key {', '.join(t.key)})")
        for name, typ, doc in t.fields:
            print(f"  {name:<22}{typ!s:<16}{doc}")
        print(f"  {'status':<22}{'string':<16}ok / skipped / failed")
        print(f"  {'error':<22}{'string':<16}reason, required when status is not ok\n")
    return 0


COMMANDS = {
    "build": cmd_build,
    "status": cmd_status,
    "verify": cmd_verify,
    "corpus": cmd_corpus,
    "demo": cmd_demo,
    "score": cmd_score,
    "export": cmd_export,
    "eval": cmd_eval,
    "report": cmd_report,
    "explain": cmd_explain,
    "remove": cmd_remove,
    "schemas": cmd_schemas,
}

if __name__ == "__main__":
    sys.exit(main())
