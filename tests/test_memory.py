"""The encode worker's memory estimate (`ltxa_data.memory`): weights from the checkpoint header, activations
from the measured constants, the plan that fits workers and batch to the machine, and the machine's room."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ltxa_data.errors import SystemicError
from ltxa_data.memory import (
    GIB,
    HOST_USABLE,
    MIB,
    WorkerMemory,
    encode_memory,
    encoder_weights,
    host_memory_available,
    plan_workers,
    safetensors_header,
    worker_memory,
)
from ltxa_data.recipe import parse_recipe

from .fixtures.random_ltx import write_random_ltx_checkpoint, write_split_ltx_vaes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_ltx_checkpoint(tmp_path_factory.mktemp("ltx") / "ltx-2.3-random.safetensors")


def _state_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_weights_are_what_ltx_core_loads(checkpoint: Path, dtype: str) -> None:
    from ltxa_data.backends.ltx_vae import LtxVaeEncoders

    w = encoder_weights(checkpoint, None, dtype)
    vae = LtxVaeEncoders(checkpoint, device="cpu", video_dtype=getattr(torch, dtype))
    if dtype == "bfloat16":  # a CPU without bf16 units computes in float32 (stored latents stay bf16)
        vae.video_encoder.to(torch.bfloat16)
    assert w.video_bytes == _state_bytes(vae.video_encoder)
    assert w.audio_bytes == _state_bytes(vae.audio_encoder)  # float32 whatever the file holds
    assert w.largest_bytes == max(t.numel() * t.element_size() for t in vae.video_encoder.state_dict().values())
    # the file is bf16: loading the video encoder in float32 holds the stored copy while casting
    assert w.load_extra_bytes == (w.video_bytes // 2 if dtype == "float32" else w.audio_bytes // 2)


def test_weights_equal_the_header_tensors_bytes(checkpoint: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as f:
        stored = {k: f.get_tensor(k).nbytes for k in f.keys()}  # noqa: SIM118 (not a mapping)
    video = sum(n for k, n in stored.items() if k.startswith("vae.encoder.")) + sum(
        stored[f"vae.per_channel_statistics.{s}"] for s in ("mean-of-means", "std-of-means"))
    audio = sum(n for k, n in stored.items() if k.startswith(("audio_vae.encoder.", "audio_vae.per_channel_stat")))
    w = encoder_weights(checkpoint, None, "bfloat16")  # the file is bf16: the bytes as stored
    assert (w.video_bytes, w.audio_bytes) == (video, 2 * audio)  # the audio encoder is upcast to float32
    assert "config" in safetensors_header(checkpoint)["__metadata__"]
    for bare in (False, True):  # split VAE files, prefixed or in the bare ComfyUI layout
        v, a = write_split_ltx_vaes(checkpoint, tmp_path / f"v{bare}.safetensors", tmp_path / f"a{bare}.safetensors",
                                    bare=bare)
        assert encoder_weights(v, a, "bfloat16") == w


def test_no_encoder_in_the_file_is_systemic(tmp_path: Path) -> None:
    from .fixtures.random_ltx import write_safetensors

    path = write_safetensors(tmp_path / "t.safetensors", {"model.diffusion_model.x": torch.zeros(4)}, {"vae": {}})
    with pytest.raises(SystemicError, match="no video VAE encoder"):
        encoder_weights(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(SystemicError, match="safetensors header"):
        encoder_weights(tmp_path / "junk.safetensors")


def test_per_sample_grows_with_size(checkpoint: Path) -> None:
    w = encoder_weights(checkpoint, None, "float32")
    needs = [worker_memory(w, size=s) for s in (64, 128, 256, 512)]
    per = [n.per_sample_bytes for n in needs]
    assert per == sorted(per) and len(set(per)) == 4
    assert needs[3].per_sample_bytes > 3.5 * needs[2].per_sample_bytes  # video-bound: ~ pixels
    assert needs[3].host_bytes(4) > needs[3].host_bytes(2) > needs[3].host_bytes(1)
    assert needs[3].gpu_bytes(4) == 0
    gpu = worker_memory(w, size=512, device="cuda")
    assert gpu.gpu_bytes(2) > gpu.gpu_bytes(1) > gpu.weights_bytes and gpu.host_bytes(1) < needs[3].host_bytes(1)


def test_encode_memory_reads_the_recipe(checkpoint: Path, tmp_path: Path) -> None:
    recipe = parse_recipe({"name": "t", "input": {"paths": ["x"]}, "output": {"dir": "out"}, "targets": {"size": 256},
                           "encode": {"backend": "ltx", "checkpoint": str(checkpoint), "device": "cpu",
                                      "video_dtype": "float32"}}, base_dir=tmp_path)
    need = encode_memory(recipe)
    assert need.device == "cpu" and need.size == "121x256x256 float32"
    assert need.weights_bytes == encoder_weights(checkpoint, None, "float32").total
    assert need.per_sample_bytes == worker_memory(encoder_weights(checkpoint, None, "float32"),
                                                  size=256).per_sample_bytes
    assert "GiB host" in need.explain(4)


def _need(per_gib: float = 2.0, device: str = "cpu") -> WorkerMemory:
    return WorkerMemory(device=device, runtime_bytes=GIB // 2, weights_bytes=GIB, load_extra_bytes=GIB // 2,
                        fixed_activation_bytes=0, per_sample_bytes=int(per_gib * GIB), cut_bytes=0, held_batches=3,
                        gpu_context_bytes=GIB if device == "cuda" else 0, size="121x512x512 bfloat16")


def test_plan_keeps_settings_that_fit() -> None:
    need = _need()  # 1.5 + 2 x batch GiB a worker
    plan = plan_workers(need, workers=2, batch_size=4, host_available=64 * GIB)
    assert (plan.workers, plan.batch_size, plan.reduced, plan.message) == (2, 4, False, None)
    assert plan.host_bytes == 2 * need.host_bytes(4)


def test_plan_reduces_workers_when_host_is_short() -> None:
    need = _need()  # 9.5 GiB a worker at batch 4
    plan = plan_workers(need, workers=2, batch_size=4, host_available=12 * GIB)
    assert (plan.workers, plan.batch_size) == (1, 4)
    assert plan.message is not None
    assert "~9.5 GiB host" in plan.message and "12.0 GiB host available" in plan.message
    assert "holds 1 worker of 2" in plan.message and "using 1 worker, batch 4" in plan.message
    # one worker does not fit at batch 4 either: the batch comes down next
    plan = plan_workers(need, workers=2, batch_size=4, host_available=7 * GIB)
    assert (plan.workers, plan.batch_size) == (1, 2) and plan.host_bytes <= 7 * GIB * HOST_USABLE


def test_plan_refuses_with_the_numbers_when_nothing_fits() -> None:
    with pytest.raises(SystemicError) as e:
        plan_workers(_need(), workers=2, batch_size=4, host_available=3 * GIB)
    msg = str(e.value)
    assert "~3.5 GiB host" in msg and "weights 1.0" in msg and "batch of 1 2.0" in msg and "3.0 GiB" in msg


def test_plan_lowers_the_gpu_batch_first() -> None:
    need = _need(per_gib=10.0, device="cuda")  # GPU: 1 + 1 + 10 x batch x 1.2 GiB
    plan = plan_workers(need, workers=1, batch_size=4, host_available=64 * GIB, gpu_total=80 * GIB)
    assert (plan.workers, plan.batch_size) == (1, 4) and plan.message is None
    plan = plan_workers(need, workers=2, batch_size=4, host_available=64 * GIB, gpu_total=80 * GIB)
    assert (plan.workers, plan.batch_size) == (2, 3)  # two workers share the GPU: batch 3 each
    assert "GiB GPU" in (plan.message or "") and "80.0 GiB per GPU" in (plan.message or "")
    plan = plan_workers(need, workers=2, batch_size=4, host_available=64 * GIB, gpu_total=80 * GIB, gpu_count=2)
    assert (plan.workers, plan.batch_size) == (2, 4)
    plan = plan_workers(need, workers=2, batch_size=4, host_available=64 * GIB, gpu_total=24 * GIB)
    assert (plan.workers, plan.batch_size) == (1, 1)
    with pytest.raises(SystemicError, match=r"~14\.0 GiB GPU.*12\.0 GiB"):
        plan_workers(need, workers=1, batch_size=4, host_available=64 * GIB, gpu_total=12 * GIB)


def _fake_machine(tmp: Path, cgroup: str, files: dict[str, str]) -> dict[str, Path]:
    tmp.mkdir(parents=True)
    (tmp / "meminfo").write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    (tmp / "cgroup").write_text(cgroup)
    for rel, text in files.items():
        (tmp / "fs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "fs" / rel).write_text(text)
    return {"meminfo": tmp / "meminfo", "proc_cgroup": tmp / "cgroup", "cgroup_root": tmp / "fs"}


def test_host_memory_available(tmp_path: Path) -> None:
    avail = 20_000_000 * 1024
    free = _fake_machine(tmp_path / "a", "0::/job\n", {"job/memory.max": "max\n"})
    assert host_memory_available(**free) == avail
    v2 = _fake_machine(tmp_path / "b", "0::/job\n", {"job/memory.max": f"{8 * GIB}\n",
                                                     "job/memory.current": f"{3 * GIB}\n",
                                                     "job/memory.stat": f"anon 1\ninactive_file {GIB}\n"})
    assert host_memory_available(**v2) == 6 * GIB
    v1 = _fake_machine(tmp_path / "c", "4:memory:/docker/abc\n1:cpu:/\n",  # namespaced: the limit at the root
                       {"memory/memory.limit_in_bytes": f"{4 * GIB}\n", "memory/memory.usage_in_bytes": f"{GIB}\n",
                        "memory/memory.stat": "total_inactive_file 0\n"})
    assert host_memory_available(**v1) == 3 * GIB
    unlimited = _fake_machine(tmp_path / "d", "4:memory:/x\n", {"memory/memory.limit_in_bytes": "9223372036854771712"})
    assert host_memory_available(**unlimited) == avail
    assert 0 < host_memory_available() <= 1 << 50  # this machine


def test_estimate_is_near_a_measured_encode(checkpoint: Path) -> None:
    """A real encode (small config, float32, 121x128x128, batch 1) in a fresh process: its peak RSS is within
    1.5x of the estimate (which counts a worker's other imports too, so it sits above)."""
    frames, size = 121, 128
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "encode_memory.py"), "measure", str(checkpoint),
                        "--frames", str(frames), "--size", str(size), "--batch", "1", "--threads", "2"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    m = json.loads(p.stdout.splitlines()[-1])
    measured = max(m["load_peak"], m["peak"])
    need = worker_memory(encoder_weights(checkpoint, None, "float32"), frames=frames, size=size, prefetch_batches=0,
                         keep_media=False)
    ratio = need.host_bytes(1) / measured
    assert 1 / 1.5 < ratio < 1.5, f"estimate {need.host_bytes(1) / MIB:.0f} MiB, measured {measured / MIB:.0f} MiB"
    assert math.isfinite(ratio)


def test_the_build_fits_encode_workers_to_memory_and_refuses_what_cannot_fit(
        checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wired into the build: on a machine that holds one encode worker of two, the shard stage runs one
    and says why; on one that holds none, the build is refused before any work, with the numbers."""
    from ltxa_data import pipeline
    from ltxa_data.executors import jobs
    from ltxa_data.executors.local import LocalExecutor
    from ltxa_data.stages.shard import ShardStage

    recipe = parse_recipe({"name": "t", "input": {"paths": ["x"]}, "output": {"dir": "out"},
                           "executor": {"workers": 2}, "targets": {"size": 512},
                           "encode": {"backend": "ltx", "checkpoint": str(checkpoint), "device": "cpu",
                                      "batch_size": 4}}, base_dir=tmp_path)
    need = encode_memory(recipe)
    monkeypatch.setattr(jobs, "host_memory_available", lambda: int(need.host_bytes(4) * 1.5 / 0.9))
    stage, notes = ShardStage(recipe), []
    job = jobs.plan_job(stage, LocalExecutor(2), tmp_path / "watch", notes)
    assert job.workers == 1 and stage.recipe.encode.batch_size == 4
    assert len(notes) == 1 and "holds 1 worker of 2" in notes[0] and "GiB" in notes[0], notes
    assert job.resources.memory_gb == pytest.approx(need.host_bytes(4) / 2**30, rel=0.01)

    monkeypatch.setattr(pipeline, "host_memory_available", lambda: int(need.host_bytes(1) * 0.5))
    [problem] = pipeline._memory_problems(recipe)
    assert "one worker at batch 1 needs" in problem and "GiB of host memory is available" in problem, problem
