"""notebooks/inspect_demo.ipynb runs headless, top to bottom, on a build: the `built` fixture's, and a build that
stopped early (tables absent) found by the notebook's default path.

The kernel is this interpreter (a kernel spec written for `sys.executable` in a temporary folder, so a `python3`
spec elsewhere on the machine cannot stand in) and listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import polars as pl
import psutil
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient
from traitlets.config import Config

from ltxa_data.recipe import Recipe

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "notebooks" / "inspect_demo.ipynb"
KERNEL = "ltxa-data-test"
LOCALHOST = "127.0.0.1"


def run_notebook(cwd: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nbformat.NotebookNode, set[str]]:
    """The notebook executed in a kernel started in `cwd` (as jupyter starts one in the notebook's folder), and the
    addresses the kernel listened on. A cell that raises fails the run (CellExecutionError)."""
    spec = Path(write_kernel_spec(tmp / "jupyter" / "kernels" / KERNEL))
    assert json.loads((spec / "kernel.json").read_text())["argv"][0] == sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(tmp / "jupyter"))  # searched before the user's and the system's
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp / "runtime"))  # connection files
    monkeypatch.setenv("IPYTHONDIR", str(tmp / "ipython"))  # the kernel's history
    seen: dict[str, Any] = {}

    def kernel_started(notebook: nbformat.NotebookNode) -> None:
        """Records the kernel's settings and the addresses it listens on (asserted once the kernel is shut down:
        an exception here would leave it running)."""
        km = client.km
        try:
            seen.update(transport=km.transport, ip=km.ip, info=km.get_connection_info())
            conns = psutil.Process(km.provisioner.pid).net_connections(kind="inet")
            seen["listens"] = [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
        except Exception as e:
            seen["error"] = e

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=60, startup_timeout=60, on_notebook_start=kernel_started,
                            config=Config({"KernelManager": {"transport": "tcp", "ip": LOCALHOST}}),
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    assert "error" not in seen, seen
    assert (seen["transport"], seen["ip"], seen["info"]["ip"]) == ("tcp", LOCALHOST, LOCALHOST)
    ports = {seen["info"][f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")}
    assert ports <= {a.port for a in seen["listens"]}, (ports, seen["listens"])
    return nb, {a.ip for a in seen["listens"]}


def outputs(nb: nbformat.NotebookNode, cell_id: str) -> str:
    """A code cell's printed and displayed text."""
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    assert cell.cell_type == "code" and cell.execution_count is not None, f"cell {cell_id} did not run"
    return "".join(o["text"] if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
                   for o in cell.outputs)


def frame(text: str) -> list[dict[str, str]]:
    """The rows of the first polars frame printed in `text` (its box-drawing form), as text keyed by column."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("│"))
    names = [c.strip() for c in lines[head].strip("│").split("┆")]
    body = next(i for i, line in enumerate(lines) if i > head and line.startswith("╞"))
    rows = []
    for line in lines[body + 1:]:
        if line.startswith("└"):
            return rows
        rows.append(dict(zip(names, (c.strip() for c in line.strip("│").split("┆")), strict=True)))
    raise AssertionError(f"no end of table in {text!r}")


def no_errors(nb: nbformat.NotebookNode) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "not every cell ran"
    errors = [o for c in code for o in c.outputs if o["output_type"] == "error"]
    assert not errors, errors


def ok_rows(manifests: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(manifests / f"{name}.parquet").filter(pl.col("status") == "ok")


def test_notebook_on_build(built: Recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = Path(built.manifests_dir).resolve()
    monkeypatch.setenv("LTXA_MANIFESTS", str(m))
    nb, listening = run_notebook(NOTEBOOK.parent, tmp_path, monkeypatch)
    no_errors(nb)
    assert listening == {LOCALHOST}
    assert f"manifests: {m}\n" in outputs(nb, "load")
    assert "not written" not in outputs(nb, "load")

    # Per identity, counted here from the manifests without the notebook's code.
    identities, pairs = ok_rows(m, "identities"), ok_rows(m, "pairs")
    voices = Counter(identities["identity_id"].to_list())
    videos = Counter(i for i, _ in set(identities.select("identity_id", "video_id").iter_rows()))
    targets = Counter(ok_rows(m, "targets")["identity_id"].to_list())
    references = Counter(ok_rows(m, "references")["identity_id"].to_list())
    samples = Counter(pairs["identity_id"].to_list())
    splits: dict[str, set[str]] = {}
    for identity, split in pairs.select("identity_id", "split").iter_rows():
        splits.setdefault(identity, set()).add(split)
    assert all(len(s) == 1 for s in splits.values())
    expected = {i: {"identity_id": i, "videos": str(videos[i]), "voices": str(voices[i]), "targets": str(targets[i]),
                    "references": str(references[i]), "samples": str(samples[i]),
                    "split": next(iter(splits[i])) if i in splits else "null"} for i in voices}
    shown = frame(outputs(nb, "per-identity"))
    assert {r["identity_id"]: r for r in shown} == expected
    assert [int(r["samples"]) for r in shown] == sorted(samples[i] for i in voices)[::-1]
    assert sum(samples.values()) > 0 and len({s for v in splits.values() for s in v}) >= 2  # not a vacuous build

    per_split: dict[str, list[Any]] = {}
    for identity, split in pairs.select("identity_id", "split").iter_rows():
        per_split.setdefault(split, []).append(identity)
    assert frame(outputs(nb, "splits")) == [{"split": s, "samples": str(len(ids)), "identities": str(len(set(ids)))}
                                            for s, ids in sorted(per_split.items())]

    # Rejects and skips: every table's rows that are not ok, by status.
    not_ok = Counter()
    for path in m.glob("*.parquet"):
        for (status,) in pl.read_parquet(path).filter(pl.col("status") != "ok").select("status").iter_rows():
            not_ok[path.stem, status] += 1
    assert not_ok, "the build rejected nothing: the rejects check would be vacuous"
    assert {(r["table"], r["status"]): int(r["rows"]) for r in frame(outputs(nb, "rejects"))} == dict(not_ok)

    shards = ok_rows(m, "shards")
    shown_shards = frame(outputs(nb, "shards"))
    assert {(r["split"], r["shard"]): int(r["len"]) for r in shown_shards} == dict(
        Counter(shards.select("split", "shard").iter_rows()))


@pytest.mark.parametrize("start", ["notebooks", "."])
def test_notebook_default_path_and_absent_tables(built: Recipe, start: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without LTXA_MANIFESTS the notebook reads <repository>/manifests/demo, whether jupyter starts at the root or
    in notebooks/; a build that stopped after identify (no targets, references, pairs or shards) still runs."""
    repo = tmp_path / "repo"
    (repo / "recipes").mkdir(parents=True)
    (repo / "recipes" / "demo.yaml").write_text("name: demo\n")
    (repo / "notebooks").mkdir()
    demo = repo / "manifests" / "demo"
    demo.mkdir(parents=True)
    for name in ("videos", "identities"):
        shutil.copy(Path(built.manifests_dir) / f"{name}.parquet", demo)
    monkeypatch.delenv("LTXA_MANIFESTS", raising=False)
    nb, listening = run_notebook((repo / start).resolve(), tmp_path, monkeypatch)
    no_errors(nb)
    assert listening == {LOCALHOST}
    loaded = outputs(nb, "load")
    assert f"manifests: {demo.resolve()}\n" in loaded
    assert "not written (read as empty): ['targets', 'references', 'pairs', 'shards']" in loaded

    identities = ok_rows(demo, "identities")
    shown = frame(outputs(nb, "per-identity"))
    assert sorted(r["identity_id"] for r in shown) == sorted(identities["identity_id"].unique().to_list())
    assert all(r["targets"] == r["references"] == r["samples"] == "0" and r["split"] == "null" for r in shown)
    assert frame(outputs(nb, "splits")) == [] and frame(outputs(nb, "shards")) == []
