"""The HTML build report: what a full build leaves, checked against the manifests and the shards, and opened
in headless Chromium (inside a network namespace with only loopback)."""

from __future__ import annotations

import io
import json
import shutil
import time
import wave
from html.parser import HTMLParser
from pathlib import Path

import av
import polars as pl
import pytest
from PIL import Image

from ltxa_data.cli import main
from ltxa_data.errors import SystemicError
from ltxa_data.recipe import Recipe, load_recipe
from ltxa_data.reporting.figures import funnel
from ltxa_data.reporting.report import report_is_current, write_report
from ltxa_data.shard_format import read_sample, read_shard
from ltxa_data.storage import read_frame

from .browser import browse, needs_chromium
from .conftest import copy_build, recipe_dict, write_recipe
from .netns import needs_netns


class _Page(HTMLParser):
    """Every tag with its attributes, and the text of table cells by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(index: Path) -> _Page:
    page = _Page()
    page.feed(index.read_text(encoding="utf-8"))
    return page


def links(page: _Page) -> list[str]:
    return [a[k] for _, a in page.tags for k in ("src", "href") if a.get(k) and not a[k].startswith("#")]


def test_a_build_leaves_a_report_true_to_its_manifests_and_shards(built: Recipe) -> None:
    index = built.report_dir / "index.html"
    assert index.is_file(), "a full build writes its report"
    page = parse(index)
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids)), "element ids are unique (anchors and tables)"
    refs = links(page)
    assert refs, "the page links its plots and media"
    for ref in refs:
        assert "://" not in ref and not ref.startswith("/"), f"{ref}: the report must open from disk, offline"
        assert (index.parent / ref).is_file(), f"broken link {ref}"
    # Plots: one PNG per figure, real pictures.
    plots = [a["src"] for t, a in page.tags if t == "img" and "plot" in a.get("class", "")]
    assert {Path(p).stem for p in plots} >= {"funnel", "durations", "speech_ratio", "references", "splits",
                                            "identities", "active_speaker"}
    for p in plots:
        with Image.open(index.parent / p) as im:
            assert im.size[0] > 400 and im.size[1] > 200
            assert len(set(im.convert("L").getdata())) > 10, f"{p} is blank"

    m = built.manifests_dir
    shards = read_frame(m, "shards", ok_only=True)
    steps = {s.name: s for s in funnel(m)}
    assert list(steps) == ["videos", "speech", "voices", "identities", "targets", "pairs", "shards"]
    assert steps["shards"].count == shards.height
    assert steps["shards"].hours == pytest.approx(shards.height * 4.84 / 3600)
    targets = read_frame(m, "targets")
    assert steps["targets"].count == targets.filter(pl.col("status") == "ok").height
    assert steps["targets"].dropped == targets.filter(pl.col("status") != "ok").height
    assert sum(n for _, n, _ in steps["targets"].reasons) == steps["targets"].dropped
    assert steps["identities"].count == read_frame(m, "identities", ok_only=True)["identity_id"].n_unique()
    funnel_rows = next(rows for rows in page.tables.values() if rows and rows[0][0] == "videos")
    assert [r[0] for r in funnel_rows] == list(steps)

    # Contact sheets: one per split that has samples.
    sheets = {Path(a["src"]).stem for t, a in page.tags if t == "img" and "sheet" in a.get("class", "")}
    assert sheets == set(shards["split"].unique())

    # Players: the target mp4 carries the shard's video and its own audio; the reference wav is the shard's.
    videos = [a["src"] for t, a in page.tags if t == "video"]
    audios = [a["src"] for t, a in page.tags if t == "audio"]
    assert len(videos) == min(built.report.pairs, shards.height) and len(audios) >= len(videos)
    by_key = {r["key"]: r for r in shards.iter_rows(named=True)}
    for src in videos:
        key = Path(src).stem
        row = by_key[key]
        members = read_sample(built.shards_dir, row["shard"], row["offset"], row["nbytes"])
        assert members == {ext: data for ext, data in read_shard(built.shards_dir / row["shard"])[key]["files"]
                           .values()}, "reading by byte offset gives the sample's members"
        with av.open(str(index.parent / src)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert (v.codec_context.name, v.frames, v.width, v.height) == ("h264", 121, 512, 512)
            assert a.codec_context.name == "aac" and a.rate == 16000 and a.channels == 2
        with av.open(io.BytesIO(members["mp4"])) as c:
            shard_packets = [bytes(p) for p in c.demux(video=0) if p.size]
        with av.open(str(index.parent / src)) as c:
            report_packets = [bytes(p) for p in c.demux(video=0) if p.size]
        assert report_packets == shard_packets, "the target's video is copied, not re-encoded"
        assert (index.parent / f"media/{key}.ref0.wav").read_bytes() == members["ref0.wav"]
        with wave.open(str(index.parent / f"media/{key}.ref0.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (16000, 2, 56000)
    # Swap eval: every case is a row.
    cases = read_frame(m, "swap_eval", ok_only=True)
    assert len(page.tables["swap-table"]) == cases.height
    # Identity quality against the generated corpus's ground truth.
    assert "adjusted Rand index" in index.read_text()


def test_report_is_bounded_and_replaces_the_previous_one(built: Recipe, tmp_path: Path) -> None:
    data = json.loads(json.dumps(built.model_dump(mode="json", exclude={"base_dir"})))
    data["report"] = {"pairs": 2, "contact_sheet": 3, "table_rows": 5}
    data["output"] = {"dir": str(built.output_dir), "manifests": str(built.manifests_dir)}
    recipe = load_recipe(write_recipe(tmp_path / "small", data))
    out = tmp_path / "r"
    write_report(recipe, out)
    (out / "stale.txt").write_text("old")
    index = write_report(recipe, out)
    assert not (out / "stale.txt").exists(), "a new report replaces the old report whole"
    assert not list(tmp_path.glob(".r.*")), "no partial folder is left behind"
    page = parse(index)
    assert len([t for t, _ in page.tags if t == "video"]) == 2
    assert len(page.tables["swap-table"]) == 5
    sheets = sorted((out / "sheets").glob("*.jpg"))
    splits = read_frame(recipe.manifests_dir, "shards", ok_only=True)["split"].unique().to_list()
    assert splits and sorted(p.stem for p in sheets) == sorted(splits), "a sheet per split with samples"
    for split_sheet in sheets:
        with Image.open(split_sheet) as im:
            assert im.size[0] == 3 * (192 + 4), "three tiles per split"


def test_rejected_files_are_listed_with_their_reasons(corpus: Path, tmp_path: Path) -> None:
    """Hostile files land in the report's rejected table, each with its reason, and the command works."""
    from ltxa_data.corpus.generate import make_bad_inputs

    bad = tmp_path / "bad"
    make_bad_inputs(bad, sorted(corpus.rglob("clip_00.mp4"))[0])
    data = recipe_dict(bad)
    recipe = load_recipe(write_recipe(tmp_path / "recipe", data))
    from ltxa_data.pipeline import build

    build(recipe, progress=False, only=["scan"])
    assert main(["report", str(recipe.base_dir / "recipe.yaml")]) == 0
    page = parse(recipe.report_dir / "index.html")
    rows = page.tables["rejected-table"]
    rejects = read_frame(recipe.manifests_dir, "videos").filter(pl.col("status") != "ok")
    assert rejects.height >= 5
    assert sorted((r[1], r[3]) for r in rows) == sorted(zip(rejects["rel_path"], rejects["error"], strict=True))
    videos_step = funnel(recipe.manifests_dir)[0]
    assert videos_step.dropped == rejects.height and len(funnel(recipe.manifests_dir)) == 1
    assert all(reason and ": " not in reason.split(" ")[0] for reason, _, _ in videos_step.reasons)


@needs_chromium
@needs_netns
def test_the_report_opens_from_disk_in_headless_chromium(built: Recipe, tmp_path: Path) -> None:
    """No console errors, exceptions, broken links or outside requests; every plot and sheet decoded; every
    video and audio loads and plays; the filter boxes filter."""
    index = built.report_dir / "index.html"
    t0 = time.perf_counter()
    with browse(index, timeout=120) as page:
        images = page.check_images()
        media = page.check_media(play_seconds=3)
        table = "#rejected-table" if page.evaluate("!!document.querySelector('#rejected-table')") else "#swap-table"
        total = page.evaluate(f"document.querySelectorAll('{table} tbody tr').length")
        first = page.evaluate(f"document.querySelector('{table} tbody td:nth-child(2)').textContent")

        def shown_with(text: str) -> int:
            """Rows left visible with `text` in the table's filter box."""
            return page.evaluate(f"""(() => {{
                const box = document.querySelector('input.filter[data-table="{table[1:]}"]');
                box.value = {json.dumps(text)}; box.dispatchEvent(new Event('input'));
                return [...document.querySelectorAll('{table} tbody tr')].filter(r => r.style.display !== 'none')
                    .length;
            }})()""")

        shown, none_shown, cleared = shown_with(first), shown_with("no row holds this zq9x"), shown_with("")
        plots_drawn = page.evaluate("[...document.querySelectorAll('img.plot')].filter(i => i.complete && "
                                    "i.naturalWidth > 400).length")
        page.screenshot(tmp_path / "report.png")
        report = page.report()
    seconds = time.perf_counter() - t0
    report.assert_clean()
    print(f"browser check of the report: {seconds:.1f} s ({len(images)} images, {len(media)} media elements)")
    assert plots_drawn == len([i for i in images if "/plots/" in i.src]) >= 7
    assert len([i for i in images if "/sheets/" in i.src]) == len(list((index.parent / "sheets").glob("*.jpg")))
    videos = [m for m in media if m.tag == "video"]
    assert videos and all(m.width == 512 and m.height == 512 and m.played for m in videos)
    assert all(abs((m.duration or 0) - 4.84) < 0.1 for m in videos)
    assert all(m.played and m.duration and abs(m.duration - 3.5) < 0.01 for m in media if m.tag == "audio")
    # The rows that hold every word of the first row's second cell, counted from the HTML (not by the page's script).
    words = first.lower().split()
    matching = sum(all(w in "".join(r).lower() for w in words) for r in parse(index).tables[table[1:]])
    assert total >= 1 and 1 <= shown == matching <= total, (shown, matching, total)
    assert (none_shown, cleared) == (0, total), "a filter matching nothing hides every row; clearing it shows all"
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.size[0] >= 1000 and shot.size[1] > 2000, "a full-page screenshot"


def test_report_never_replaces_a_folder_that_is_not_a_report(built: Recipe, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    for dest, words in ((built.output_dir, "holds the build's output folder"),
                        (built.output_dir.parent, "holds the build's output folder"),
                        (built.manifests_dir, "holds the build's manifests folder"),
                        (Path(built.input.paths[0]) / "report", "inside the input folder"),
                        (mine, "is not a report folder")):
        with pytest.raises(SystemicError, match=words):
            write_report(built, dest)
    assert (mine / "thesis.tex").read_text() == "precious" and built.manifests_dir.is_dir()
    assert main(["report", str(built.base_dir / "recipe.yaml"), "--out", str(mine)]) == 1


def test_report_of_a_build_without_pairs(built: Recipe, tmp_path: Path) -> None:
    """Every pair skipped (identities with one video each) and no shards: the report says so, it does not fail."""
    m = tmp_path / "manifests"
    shutil.copytree(built.manifests_dir, m, ignore=shutil.ignore_patterns(".state", "shards.parquet"))
    pairs = pl.read_parquet(m / "pairs.parquet").with_columns(pl.lit("skipped").alias("status"),
                                                              pl.lit("no reference from another video").alias("error"))
    pairs.write_parquet(m / "pairs.parquet")
    data = json.loads(json.dumps(built.model_dump(mode="json", exclude={"base_dir"})))
    data["output"] = {"dir": str(tmp_path / "out"), "manifests": str(m)}
    recipe = load_recipe(write_recipe(tmp_path / "r", data))
    page = parse(write_report(recipe))
    assert not [t for t, _ in page.tags if t == "video"]
    steps = {s.name: s for s in funnel(m)}
    reason = "no reference from another video"
    assert steps["pairs"].count == 0 and steps["pairs"].reasons == [(reason, pairs.height, reason)]
    assert "shards" not in steps


def test_a_build_that_runs_nothing_keeps_its_report(built: Recipe, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A rerun with nothing to do leaves the report alone (writing it is most of such a run's time); a change to
    anything it shows writes it again."""
    import os

    recipe = copy_build(built, tmp_path, report={"enabled": True})
    index = write_report(recipe)
    stamp = index.stat().st_mtime_ns
    assert report_is_current(recipe)
    assert main(["build", str(tmp_path / "recipe.yaml"), "--no-progress"]) == 0
    assert "(unchanged: nothing it shows changed)" in capsys.readouterr().out
    assert index.stat().st_mtime_ns == stamp
    table = recipe.manifests_dir / "swap_eval.parquet"
    os.utime(table, ns=(table.stat().st_atime_ns, table.stat().st_mtime_ns + 10**9))
    assert not report_is_current(recipe)
    assert main(["build", str(tmp_path / "recipe.yaml"), "--no-progress"]) == 0
    assert index.stat().st_mtime_ns != stamp and report_is_current(recipe)

