"""Issue 6's ablation table in the paper's style: FVD-probe and FID-probe per video-LDM variant.

    python benchmarks/video_ablation.py --out benchmarks/results/video_ablation --threads 1 \
        --variant full=runs/models/ablation_video_full \
        --variant no_context_guidance=runs/models/ablation_video_full@1 \
        --variant attention_only=runs/models/ablation_video_attention \
        --variant context_noise=runs/models/ablation_video_context_noise \
        --variant from_scratch=runs/models/ablation_video_scratch
    python benchmarks/video_ablation.py --random --quick --out /tmp/va   # plumbing check

A variant is NAME=MODEL_DIR[@S]: a world-model folder (all stages; the variants differ only in stage
"video_ldm", trained by conf/experiment/ablation/video_ldm.yaml on one equal budget) and optionally the
context-guidance scale S to sample with (default: the engine's; S = 1 is "without context guidance").
Each variant and sampling seed is measured by the clip section of benchmarks/video_ldm_quality.py (the
same real clips, actions, probes and engine settings for every variant): from one real context frame per
clip the engine generates a clip; FVD-/FID-probe against held-out real clips next to the real-vs-real
floor, label adherence of whole clips, flicker. Writes `<out>/runs/NAME_sSEED.json` per measurement
(reused when present, so a table can be filled by several processes, one variant each; --fresh
recomputes), and `<out>/ablation.json` (rows with the training steps / CPU-minutes / final loss of
each variant's video stage; mean and standard error over seeds where more than one), `ablation.png`,
and the table as Markdown on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from drivesim.eval.probe_data import HELDOUT_SEED_BASE, REFERENCE_SEED_BASE  # noqa: E402
from drivesim.eval.probe_io import load_probes  # noqa: E402
from drivesim.eval.report import to_plain, write_json  # noqa: E402
from drivesim.eval.results import EvalOptions  # noqa: E402
from drivesim.paths import default_probes_dir  # noqa: E402
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig  # noqa: E402
from drivesim.rollout.random_model import RandomModelSpec, build_random_model  # noqa: E402
from drivesim.rollout.world_model import load  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _seed_summary import seed_summary  # noqa: E402
from _video_eval import random_probes, render_real  # noqa: E402
from video_ldm_quality import QUICK, Sizes, control_steps, measure_clips  # noqa: E402

METRICS = ("fvd_probe", "fid_probe", "time_of_day", "crowdedness", "flicker")


@dataclass(frozen=True)
class Variant:
    name: str
    model: Path
    context_guidance: float | None  # None: the engine's default


def parse_variant(text: str) -> Variant:
    """NAME=MODEL_DIR[@S] -> Variant; a clear error for anything else."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest or not name.replace("_", "").isalnum():
        raise ValueError(f"--variant {text!r}: expected NAME=MODEL_DIR[@S] with NAME of letters, digits, _")
    model, at, scale = rest.partition("@")
    guidance = None
    if at:
        try:
            guidance = float(scale)
        except ValueError:
            raise ValueError(f"--variant {text!r}: S after '@' must be a number (context-guidance scale)") from None
        if guidance < 1.0:
            raise ValueError(f"--variant {text!r}: context-guidance scale must be >= 1 (1 = off), got {guidance}")
    return Variant(name, Path(model), guidance)


@lru_cache(maxsize=2)
def real_sets(clips: int, length: int, h: int, w: int, fps: int) -> tuple:
    """Real A (reference) and B (contexts, actions) clips, rendered once for every variant of one size."""
    return (render_real(HELDOUT_SEED_BASE, clips, length, h, w, fps),
            render_real(REFERENCE_SEED_BASE, clips, length, h, w, fps))  # fmt: skip


def measure(variant: Variant, sizes: Sizes, probes_dir: Path, seed: int, out: Path) -> dict:
    world = load(variant.model)
    guidance = {} if variant.context_guidance is None else {"context_guidance": variant.context_guidance}
    config = EngineConfig(keyframe_steps=sizes.keyframe_steps, interpolation_steps=sizes.interpolation_steps,
                          **guidance)  # fmt: skip
    engine = LearnedEngine(world, config)
    h, w = engine.frame_size
    length = engine.keyframe_stride * (control_steps(sizes.clip_seconds, engine) + 1) + 1
    real_a, real_b = real_sets(sizes.clips, length, h, w, int(round(world.fps)))
    if not probes_dir.is_dir():  # --random: tiny probes calibrated on these clips
        random_probes(probes_dir, real_a.frames, h, w)
    probes = load_probes(probes_dir, "cpu")
    options = EvalOptions(frame_step=2, clip_hop=sizes.clip_hop, window_seconds=1e6, device="cpu")
    folder = out / "storyboards" / f"{variant.name}_s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    q = measure_clips(engine, probes, real_a, real_b, sizes, options, seed, folder)
    video = world.metadata.get("video_ldm", {})
    return {
        "variant": variant.name,
        "model": str(variant.model),
        "seed": seed,
        "engine": config,
        "sizes": sizes,
        "seconds": round(time.perf_counter() - start, 1),
        "training": {k: video.get(k) for k in ("steps", "cpu_minutes", "loss", "latent_cache")},
        "fvd_probe": q.fvd_probe,
        "fvd_probe_real_vs_real": q.fvd_probe_real_vs_real,
        "fid_probe": q.fid_probe,
        "fid_probe_real_vs_real": q.fid_probe_real_vs_real,
        "time_of_day": q.condition.time_of_day if q.condition else None,
        "crowdedness": q.condition.crowdedness if q.condition else None,
        "flicker": q.flicker,
        "flicker_real": q.flicker_real,
    }


def _cell(summary: dict, name: str, fmt: str) -> str:
    m, se = summary[name]["mean"], summary[name]["standard_error"]
    return (fmt % m) + ("" if se is None else " ± " + (fmt % se))


def table(rows: list[dict]) -> str:
    head = "| variant | steps | CPU-min | FVD-probe | FID-probe | time of day | crowdedness | flicker |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        s = r["summary"]
        t = r["training"]
        cpu = "-" if t.get("cpu_minutes") is None else f"{t['cpu_minutes']:.0f}"
        cells = [_cell(s, "fvd_probe", "%.2f"), _cell(s, "fid_probe", "%.2f"), _cell(s, "time_of_day", "%.2f"),
                 _cell(s, "crowdedness", "%.2f"), _cell(s, "flicker", "%.4f")]  # fmt: skip
        lines.append(f"| {r['variant']} | {t.get('steps') or '-'} | {cpu} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], floors: dict[str, float], path: Path) -> Path:
    """FVD-probe and FID-probe per variant (mean ± s.e. over seeds), the real-vs-real floor dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(4.0 + 0.9 * len(rows), 3.2))
    names = [r["variant"] for r in rows]
    for ax, metric in zip(axes, ("fvd_probe", "fid_probe")):
        means = [r["summary"][metric]["mean"] for r in rows]
        errs = [r["summary"][metric]["standard_error"] or 0.0 for r in rows]
        ax.bar(range(len(rows)), means, yerr=errs, color="tab:blue", capsize=3)
        ax.axhline(floors[metric], color="black", linestyle="--", label="real vs real")
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric.replace("_", "-") + " (lower is better)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", default=[], help="NAME=MODEL_DIR[@S] (repeat)")
    parser.add_argument("--only", nargs="*", default=None, help="measure only these variants (others: reuse)")
    parser.add_argument("--probes", default=str(default_probes_dir()))
    parser.add_argument("--out", default="benchmarks/results/video_ablation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds per variant")
    parser.add_argument("--fresh", action="store_true", help="recompute measurements already in <out>/runs")
    parser.add_argument("--random", action="store_true", help="two random tiny models (plumbing check)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (plumbing check)")
    parser.add_argument("--clips", type=int, default=None, help="real clips per set (default 16; quick 4)")
    parser.add_argument("--keyframe-steps", type=int, default=None, help="DDIM steps per keyframe (default 10)")
    parser.add_argument("--interpolation-steps", type=int, default=None, help="DDIM steps per interpolation (8)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else Sizes()
    given = {"clips": args.clips, "keyframe_steps": args.keyframe_steps,
             "interpolation_steps": args.interpolation_steps}  # fmt: skip
    sizes = replace(sizes, **{k: v for k, v in given.items() if v is not None})
    out = Path(args.out)
    tmp = Path(tempfile.mkdtemp(prefix="video_ablation_")) if args.random else None
    try:
        if tmp is not None:
            base = build_random_model(tmp / "a", RandomModelSpec())
            variants = [Variant("random", base, None), Variant("random_no_guidance", base, 1.0)]
            probes_dir = tmp / "probes"
        else:
            try:
                variants = [parse_variant(v) for v in args.variant]
            except ValueError as err:
                parser.error(str(err))
            probes_dir = Path(args.probes)
        if not variants:
            parser.error("give at least one --variant NAME=MODEL_DIR[@S] (or --random)")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            parser.error(f"variant names must be unique, got {names}")
        unknown = set(args.only or []) - set(names)
        if unknown:
            parser.error(f"--only {sorted(unknown)}: not among the variants {names}")
        for v in variants:
            if not v.model.is_dir():
                parser.error(f"variant {v.name}: model folder {v.model} does not exist")
        rows = []
        for v in variants:
            runs = {}
            for seed in args.seeds:
                path = out / "runs" / f"{v.name}_s{seed}.json"
                todo = args.only is None or v.name in args.only
                if path.is_file() and not args.fresh:
                    runs[seed] = json.loads(path.read_text())
                elif todo:
                    runs[seed] = to_plain(measure(v, sizes, probes_dir, seed, out))
                    write_json(path, runs[seed])
            if len(runs) < len(args.seeds):
                print(f"{v.name}: {len(args.seeds) - len(runs)} seed(s) not measured yet; not in the table")
                continue
            first = runs[args.seeds[0]]
            rows.append({"variant": v.name, "model": str(v.model), "context_guidance": v.context_guidance,
                         "training": first["training"], "runs": runs,
                         "summary": seed_summary(runs, METRICS)})  # fmt: skip
        if not rows:
            return
        first = rows[0]["runs"][args.seeds[0]]
        floors = {"fvd_probe": first["fvd_probe_real_vs_real"], "fid_probe": first["fid_probe_real_vs_real"],
                  "flicker": first["flicker_real"]}  # fmt: skip
        write_json(out / "ablation.json", {"seeds": args.seeds, "floors": floors, "rows": rows})
        plot(rows, floors, out / "ablation.png")
        print(table(rows))
        print(
            f"real vs real: FVD-probe {floors['fvd_probe']:.2f}, FID-probe {floors['fid_probe']:.2f}, "
            f"flicker {floors['flicker']:.4f}; {out / 'ablation.json'}, {out / 'ablation.png'}"
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
