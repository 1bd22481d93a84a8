"""Image-LDM sweeps: guidance scale and DDIM sampling steps (quality vs cost on this CPU).

    python benchmarks/image_ldm_sweeps.py --model runs/models/default [--probes DIR] \
        --out benchmarks/results/image_ldm

Writes `<out>/sweeps.json`, `<out>/guidance_sweep.png` (label adherence, box recall and
FID-probe against the classifier-free guidance scale, labels and boxes guided alike) and
`<out>/steps_sweep.png` (the same metrics and images/s against 10, 20, 50 DDIM steps at
`--guidance`). Metrics and held-out real sets are those of `image_ldm_quality.py`.
`--contrast crowdedness` guides crowdedness against the next sparser level instead of the null.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_ldm_quality import QualityPoint, Setup, evaluate_point, setup  # noqa: E402

from drivesim.paths import default_probes_dir
from drivesim.sampling.image import ImageGuidance  # noqa: E402


def run_point(s: Setup, per_pair: int, steps: int, scale: float, seed: int, contrast: tuple[str, ...] = ()
              ) -> QualityPoint:
    guidance = dataclasses.replace(ImageGuidance.uniform(scale), contrast=contrast)
    point = evaluate_point(s.models, s.probe, s.real_a, s.real_a_features, s.box_real, per_pair, steps,
                           guidance, seed).point
    print(json.dumps(dataclasses.asdict(point)), flush=True)
    return point


def plot(points: list[QualityPoint], x_name: str, path: Path, title: str, floors: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [getattr(p, x_name) for p in points]
    panels = 3 if x_name == "steps" else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.6))
    ax = axes[0]
    for name, label, target in (
        ("time_of_day_accuracy", "time of day", 0.98),
        ("crowdedness_accuracy", "crowdedness", 0.85),
        ("box_recall", "box recall @ IoU 0.5", 0.6),
    ):
        line = ax.plot(xs, [getattr(p, name) or 0.0 for p in points], marker="o", label=label)[0]
        ax.axhline(target, color=line.get_color(), ls=":", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(x_name.replace("_", " "))
    ax.set_ylabel("adherence (dotted: targets)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    ax.plot(xs, [p.fid_probe for p in points], marker="o", color="k", label="samples vs real")
    ax.axhline(floors["fid_real_vs_real"], color="g", ls="--", label="real vs real")
    ax.axhline(floors["fid_real_vs_reconstructed"], color="b", ls="--", label="real vs reconstructed")
    ax.set_xlabel(x_name.replace("_", " "))
    ax.set_ylabel("FID-probe")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if panels == 3:
        ax = axes[2]
        ax.plot(xs, [p.images_per_second for p in points], marker="o")
        ax.set_xlabel("DDIM steps")
        ax.set_ylabel("images / s (this CPU, wall)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/models/default")
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder (default: bundled)")
    parser.add_argument("--out", default="benchmarks/results/image_ldm")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0, 5.0, 7.5])
    parser.add_argument("--steps-list", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--sweep-steps", type=int, default=20, help="DDIM steps of the guidance sweep")
    parser.add_argument("--guidance", type=float, default=3.0, help="scale of the steps sweep")
    parser.add_argument("--per-pair", type=int, default=8)
    parser.add_argument("--real-episodes", type=int, default=48)
    parser.add_argument("--box-episodes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contrast", nargs="*", default=[], choices=["time_of_day", "crowdedness"],
                        help="labels guided against their neighbouring label instead of the null")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    s = setup(args.model, args.probes, args.real_episodes, args.box_episodes)
    floors = dataclasses.asdict(s.floors)
    contrast = tuple(args.contrast)
    guidance_points = [run_point(s, args.per_pair, args.sweep_steps, g, args.seed, contrast) for g in args.scales]
    steps_points = [run_point(s, args.per_pair, n, args.guidance, args.seed, contrast) for n in args.steps_list]
    report = {
        "model": str(args.model),
        "contrast": list(contrast),
        "floors": floors,
        "guidance_sweep": [dataclasses.asdict(p) for p in guidance_points],
        "steps_sweep": [dataclasses.asdict(p) for p in steps_points],
        "cpu": {"threads": args.threads, "load_average": list(os.getloadavg())},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweeps.json").write_text(json.dumps(report, indent=2))
    plot(guidance_points, "guidance_labels", out / "guidance_sweep.png",
         f"guidance sweep ({args.sweep_steps} DDIM steps)", floors)
    plot(steps_points, "steps", out / "steps_sweep.png", f"sampling steps (guidance {args.guidance})", floors)
    print(f"sweeps -> {out}")


if __name__ == "__main__":
    main()
