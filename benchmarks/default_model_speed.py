"""Speed and efficiency of the learned simulator (issue 9): env output frames/s at the default EngineConfig for
num_envs 1 and 32 (engine's batched `step`, warm-up excluded), FLOPs per output frame per stage
(torch.utils.flop_counter over one step), this machine's matmul peak measured in the same run, and the
achieved fraction of it, for variants: default, bfloat16 autocast, channels_last weights, torch.compile of the
engine's three per-step networks (`EngineConfig.compile`; also in bfloat16), fewer DDIM steps. Prints JSON;
with --out also writes it there and a PNG plot next to it.

    python benchmarks/default_model_speed.py --random tiny --quick --threads 1 --out /tmp/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import matplotlib
import numpy as np
import torch
from env_speed import StageHooks, StageTimer  # benchmarks/env_speed.py: wrap the engine's stage methods
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
from tqdm import tqdm

from drivesim.rollout.compute_dtype import DTYPES
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.layout import to_channels_last
from drivesim.rollout.random_model import SIZES, RandomModelSpec, build_random_model
from drivesim.rollout.types import RolloutState, SceneRequest
from drivesim.rollout.world_model import load

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# StageHooks label -> stage name; `upsample` is the identity (0 FLOPs) unless EngineConfig.upsample
STAGES = {"predict": "keyframes", "fill": "interpolation", "decode": "decode", "upsample": "upsample",
          "rewards": "rewards"}


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


# FlopCounterMode has no formula for the CPU flash-attention kernel that SDPA dispatches to on CPU
CUSTOM_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


@dataclass(frozen=True)
class Variant:
    name: str
    config: EngineConfig
    channels_last: bool = False


@dataclass
class Peak:
    dtype: str
    size: int  # square matmul side
    gflops_start: float
    gflops_end: float = 0.0

    @property
    def gflops(self) -> float:
        return max(self.gflops_start, self.gflops_end)  # best of both: the machine is shared


@dataclass
class Row:
    variant: str
    num_envs: int
    dtype: str
    steps: int
    warmup_steps: int
    warmup_s: float  # includes compilation for the compile variant
    step_s_median: float = 0.0
    step_s_mean: float = 0.0
    frames_per_s: float = 0.0  # engine.frames_per_step * num_envs / median step time
    stage_s_per_step: dict[str, float] = field(default_factory=dict)
    gflops_per_frame: float = 0.0
    achieved_pct_of_peak: float = 0.0
    compile_s: float | None = None  # warm-up time minus the steady-state time of the warm-up steps
    error: str | None = None


@dataclass
class Report:
    model: str
    threads: int
    cpu_count: int | None
    loadavg_start: list[float]
    loadavg_end: list[float]
    frame_size: list[int]
    frames_per_step: int
    default_engine: dict[str, object]
    peaks: dict[str, Peak]
    gflops_per_frame_by_stage: dict[str, dict[str, float]]  # variant -> stage -> GFLOP per output frame
    rows: list[Row]
    batch_speedup: dict[str, float]  # variant -> frames/s at the largest num_envs / at the smallest
    notes: list[str]


def variants(base: EngineConfig, keyframe_steps: int, interpolation_steps: int) -> list[Variant]:
    fewer = replace(base, keyframe_steps=keyframe_steps, interpolation_steps=interpolation_steps)
    return [Variant("default", base), Variant("bfloat16", replace(base, dtype="bfloat16")),
            Variant("channels_last", base, channels_last=True), Variant("compile", replace(base, compile=True)),
            Variant("bfloat16_compile", replace(base, dtype="bfloat16", compile=True)),
            Variant(f"steps_k{keyframe_steps}_i{interpolation_steps}", fewer),
            # the learned envs' own setting on a CPU with native bfloat16 (envs/*.yaml: dtype and layout "auto")
            Variant(f"steps_k{keyframe_steps}_i{interpolation_steps}_bfloat16", replace(fewer, dtype="bfloat16"))]


def matmul_gflops(dtype: torch.dtype, size: int, repeats: int) -> float:
    """Best of `repeats` timed size x size matmuls, GFLOP/s (2 n^3 FLOPs each)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def start_state(engine: LearnedEngine, num_envs: int) -> RolloutState:
    """Start from two random user frames per env: encoding only, so the (untimed) start stays cheap."""
    h, w = engine.world.metadata.get("autoencoder", {}).get("image_size", [64, 128])
    rng = np.random.default_rng(0)
    reqs = [SceneRequest(i % 2, i % 3, seed=i, initial_frames=rng.integers(0, 256, (2, h, w, 3), np.uint8))
            for i in range(num_envs)]
    return engine.start(reqs).state


def count_flops(engine: LearnedEngine) -> dict[str, float]:
    """GFLOP per output frame of one step with one env, per stage (matmul/conv/attention ops only)."""
    state = start_state(engine, 1)
    totals = dict.fromkeys(STAGES.values(), 0.0)

    def counted(label: str, fn, *a, **kw):
        with FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS) as mode:
            out = fn(*a, **kw)
        totals[STAGES[label]] += mode.get_total_flops()
        return out

    hooks = StageHooks(engine, counted, tuple(STAGES))
    try:
        engine.step(state, np.zeros((1, 2), np.float32))
    finally:
        hooks.unwrap()
    return {k: v / engine.frames_per_step / 1e9 for k, v in totals.items()}


def time_steps(engine: LearnedEngine, row: Row) -> None:
    """Fill `row` with the warm-up time and steady-state timings of engine.step at row.num_envs."""
    state = start_state(engine, row.num_envs)
    acts = np.zeros((row.num_envs, 2), np.float32)
    t0 = time.perf_counter()
    for _ in range(row.warmup_steps):
        state = engine.step(state, acts).state
    row.warmup_s = time.perf_counter() - t0
    timer = StageTimer(engine)
    times = []
    try:
        for _ in tqdm(range(row.steps), desc=f"{row.variant} n={row.num_envs}", leave=False):
            t0 = time.perf_counter()
            state = engine.step(state, acts).state
            times.append(time.perf_counter() - t0)
    finally:
        timer.unwrap()
    row.step_s_median, row.step_s_mean = statistics.median(times), statistics.fmean(times)
    row.frames_per_s = engine.frames_per_step * row.num_envs / row.step_s_median
    row.stage_s_per_step = {k: v / row.steps for k, v in timer.totals.items()}


def run_variant(folder: Path | None, variant: Variant, args: argparse.Namespace,
                flops_cache: dict[str, dict[str, float]]) -> tuple[list[Row], dict[str, float]]:
    world = load(folder)
    engine = LearnedEngine(world, variant.config)
    key = repr(replace(variant.config, dtype="float32", compile=False))  # nor on dtype, layout or compiling
    if key not in flops_cache:
        flops_cache[key] = count_flops(engine)
    flops = flops_cache[key]
    if variant.channels_last:
        for module in world.modules():
            to_channels_last(module)
    rows = []
    for n in args.num_envs:
        row = Row(variant.name, n, variant.config.dtype, args.steps, args.warmup, 0.0)
        rows.append(row)
        try:
            time_steps(engine, row)
        except Exception as err:  # compile (or bf16) may fail on this CPU/toolchain: report, go on
            row.error = f"{type(err).__name__}: {str(err)[:500]}"
            break
        row.gflops_per_frame = sum(flops.values())
        if variant.config.compile:
            row.compile_s = max(0.0, row.warmup_s - row.warmup_steps * row.step_s_median)
    return rows, flops


def rounded(obj: object) -> object:
    """Floats to 4 significant digits, recursively (timings on a shared machine carry no more)."""
    if isinstance(obj, float):
        return float(f"{obj:.4g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return [rounded(v) for v in obj] if isinstance(obj, list) else obj


def plot(report: Report, path: Path) -> None:
    names = list(dict.fromkeys(r.variant for r in report.rows))
    sizes = sorted({r.num_envs for r in report.rows})
    width = 0.8 / len(sizes)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for j, n in enumerate(sizes):
        by = {r.variant: r for r in report.rows if r.num_envs == n and r.error is None}
        x = np.arange(len(names)) + (j - (len(sizes) - 1) / 2) * width
        axes[0].bar(x, [by[v].frames_per_s if v in by else 0 for v in names], width, label=f"num_envs={n}")
        axes[1].bar(x, [by[v].achieved_pct_of_peak if v in by else 0 for v in names], width, label=f"num_envs={n}")
    titles = ("output frames/s", "achieved % of matmul peak (fp32; bf16 peak for bfloat16)")
    for ax, title in zip(axes, titles):
        ax.set_xticks(np.arange(len(names)), names, rotation=20)
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"{report.model}, {report.threads} thread(s), frames {report.frame_size[0]}x{report.frame_size[1]}, "
                 f"load {report.loadavg_start[0]:.1f}->{report.loadavg_end[0]:.1f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled model)")
    p.add_argument("--random", choices=SIZES, default=None, help="measure a random-init model of this size instead")
    p.add_argument("--num-envs", type=int, nargs="+", default=None, help="default 1 32 (quick: 1 4)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 3, quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    p.add_argument("--variants", nargs="+", default=None, help="names to run (default: all; quick: all but compile)")
    p.add_argument("--fewer-keyframe-steps", type=int, default=4)
    p.add_argument("--fewer-interpolation-steps", type=int, default=2)
    p.add_argument("--matmul-size", type=int, default=None, help="peak matmul side (default 2048, quick 1024)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--quick", action="store_true", help="small sizes: a tiny model finishes in < 2 min")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here and the plot next to it")
    args = p.parse_args()
    if args.model is not None and args.random is not None:
        p.error("give --model or --random, not both")
    args.num_envs = args.num_envs or ([1, 4] if args.quick else [1, 32])
    args.steps = args.steps or (2 if args.quick else 3)
    size = args.matmul_size or (1024 if args.quick else 2048)
    if min(args.num_envs) < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--num-envs, --steps and --threads must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    chosen = variants(EngineConfig(), args.fewer_keyframe_steps, args.fewer_interpolation_steps)
    if args.variants is not None:
        unknown = sorted(set(args.variants) - {v.name for v in chosen})
        if unknown:
            p.error(f"--variants {unknown} unknown; allowed: {[v.name for v in chosen]}")
        chosen = [v for v in chosen if v.name in args.variants]
    elif args.quick:  # compiling takes minutes on this CPU
        chosen = [v for v in chosen if not v.config.compile]
    load_start = list(os.getloadavg())
    peak_dtypes = ["float32"] + (["bfloat16"] if any(v.config.dtype == "bfloat16" for v in chosen) else [])
    peaks = {d: Peak(d, size, matmul_gflops(DTYPES[d], size, 3)) for d in peak_dtypes}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model
        if args.random is not None:
            hw = {"height": 64, "width": 128} if args.random == "default" else {}
            folder = build_random_model(Path(tmp), RandomModelSpec(size=args.random, **hw))
        probe = LearnedEngine(load(folder), EngineConfig())
        rows, by_stage, cache = [], {}, {}
        for variant in tqdm(chosen, desc="variants"):
            got, flops = run_variant(folder, variant, args, cache)
            rows += got
            by_stage[variant.name] = flops
    for d in peak_dtypes:
        peaks[d].gflops_end = matmul_gflops(DTYPES[d], size, 3)
    for row in rows:
        if row.error is None:
            row.achieved_pct_of_peak = 100 * row.gflops_per_frame * row.frames_per_s / peaks[row.dtype].gflops
    lo, hi = min(args.num_envs), max(args.num_envs)
    fps = {(r.variant, r.num_envs): r.frames_per_s for r in rows if r.error is None}
    speedup = {v.name: fps[v.name, hi] / fps[v.name, lo] for v in chosen if (v.name, lo) in fps and (v.name, hi) in fps}
    report = Report(
        model=f"random-init {args.random} size" if args.random else str(folder or "bundled default"),
        threads=torch.get_num_threads(), cpu_count=os.cpu_count(), loadavg_start=load_start,
        loadavg_end=list(os.getloadavg()), frame_size=list(probe.frame_size), frames_per_step=probe.frames_per_step,
        default_engine=asdict(EngineConfig()), peaks=peaks, gflops_per_frame_by_stage=by_stage, rows=rows,
        batch_speedup=speedup,
        notes=["timed: engine.step (batched, as DriveWorldVectorEnv calls it), starts from 2 encoded user frames",
               "FLOPs: torch FlopCounterMode = matmul/conv/attention only (norms, activations not counted)",
               "channels_last: weights only (inputs stay NCHW); compile: EngineConfig.compile (prediction, "
               "interpolation and temporal decoder, static shapes; compile_s: the warm-up steps' extra time)"],
    )
    data = asdict(report)
    for d, peak in peaks.items():
        data["peaks"][d]["gflops"] = peak.gflops
    text = json.dumps(rounded(data), indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        plot(report, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
