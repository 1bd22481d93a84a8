"""Compare image-LDM arms scored by `image_ldm_quality.py --seeds`: mean ± standard error per arm, and the
per-seed differences from a reference arm (paired: every arm sampled the same held-out layouts and labels with
the same seeds, so the seed-to-seed spread they share cancels).

    python benchmarks/image_ldm_arms.py --arm tokens=DIR --arm layout=DIR --arm both=DIR --reference layout \
        --out benchmarks/results/box_conditioning

Each DIR holds a `quality.json` written by `image_ldm_quality.py --seeds ...`. The arm's training record (steps,
CPU-minutes, held-out loss, box conditioning, parameter count) is read from the image_ldm entry of the scored
model folder's config.yaml when that folder still exists. Writes `<out>/arms.json` (also printed) and
`<out>/arms.png` (one panel per metric: per-seed dots, mean ± standard error per arm, the target dashed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _seed_summary import seed_summary  # noqa: E402

METRICS = ("box_recall", "crowdedness_accuracy", "time_of_day_accuracy", "fid_probe")
TRAINING_KEYS = ("steps", "cpu_minutes", "val_loss", "batch_size", "box_drop", "box_weight", "init_from")


def parse_arm(text: str) -> tuple[str, Path]:
    """NAME=DIR -> (NAME, DIR); DIR must hold quality.json."""
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"--arm {text!r}: expected NAME=DIR (DIR holding quality.json)")
    if not Path(folder, "quality.json").is_file():
        raise argparse.ArgumentTypeError(f"--arm {text!r}: {folder}/quality.json not found")
    return name, Path(folder)


def seed_values(quality: dict, source: Path) -> dict[int, dict[str, float]]:
    """seed -> {metric: value} from a --seeds run (`points`; a run without --seeds has none: an error)."""
    points = quality.get("points") or {}
    if not points:
        raise ValueError(f"{source}: no per-seed `points`; score the arm with image_ldm_quality.py --seeds ...")
    return {int(seed): {m: float(point[m]) for m in METRICS} for seed, point in points.items()}


def training_record(quality: dict) -> dict:
    """The scored model's image_ldm training record (empty when its folder is gone)."""
    config = Path(str(quality.get("model", "")), "config.yaml")
    if not config.is_file():
        return {}
    entry = (yaml.safe_load(config.read_text()) or {}).get("image_ldm") or {}
    extra = entry.get("extra") or {}
    record = {k: extra[k] for k in TRAINING_KEYS if k in extra}
    unet = (entry.get("config") or {}).get("unet") or {}
    if "box_conditioning" in unet:
        record["box_conditioning"] = unet["box_conditioning"]
    return record


def paired_differences(arms: dict[str, dict[int, dict[str, float]]], reference: str) -> dict[str, dict[str, dict]]:
    """arm -> metric -> per-seed (arm - reference) over the seeds both have, mean and standard error."""
    out: dict[str, dict[str, dict]] = {}
    base = arms[reference]
    for name, values in arms.items():
        if name == reference:
            continue
        common = sorted(set(values) & set(base))
        if not common:
            raise ValueError(f"arm {name!r} shares no seed with the reference {reference!r}")
        diffs = {s: {m: values[s][m] - base[s][m] for m in METRICS} for s in common}
        out[name] = seed_summary(diffs, METRICS)
    return out


def plot_arms(summaries: dict[str, dict], targets: dict[str, float], path: Path) -> Path:
    """One panel per metric: each arm's per-seed dots and mean ± standard error; the target dashed."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.2), squeeze=False)
    names = list(summaries)
    for ax, metric in zip(axes[0], METRICS):
        for i, name in enumerate(names):
            s = summaries[name][metric]
            ax.scatter([i] * len(s["values"]), list(s["values"].values()), color="tab:blue", s=12, zorder=3)
            err = s["standard_error"] or 0.0
            ax.errorbar([i + 0.15], [s["mean"]], yerr=[err], fmt="o", color="tab:orange", capsize=3)
        target = targets.get(metric)
        if target is not None:
            ax.axhline(target, color="black", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", type=parse_arm, action="append", required=True, help="NAME=DIR (repeat)")
    parser.add_argument("--reference", default=None, help="arm the others are differenced from (default: first)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/image_ldm_arms"))
    args = parser.parse_args(argv)
    names = [name for name, _ in args.arm]
    if len(set(names)) != len(names):
        parser.error(f"--arm names must be distinct, got {names}")
    reference = args.reference or names[0]
    if reference not in names:
        parser.error(f"--reference {reference!r} is not one of the arms {names}")
    qualities = {name: json.loads(Path(folder, "quality.json").read_text()) for name, folder in args.arm}
    values = {name: seed_values(qualities[name], folder) for name, folder in args.arm}
    summaries = {name: seed_summary(v, METRICS) for name, v in values.items()}
    targets = {"box_recall": 0.6, "crowdedness_accuracy": 0.85, "time_of_day_accuracy": 0.98}
    report = {
        "reference": reference,
        "arms": {
            name: {
                "source": str(folder),
                "box_conditioning": qualities[name].get("box_conditioning"),
                "point": {k: qualities[name]["point"].get(k) for k in ("steps", "guidance_labels", "guidance_boxes")},
                "training": training_record(qualities[name]),
                "summary": summaries[name],
            }
            for name, folder in args.arm
        },
        "paired_differences": paired_differences(values, reference),
        "targets": targets,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report["plot"] = str(plot_arms(summaries, targets, args.out / "arms.png"))
    (args.out / "arms.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    for name in names:
        s = summaries[name]
        line = ", ".join(f"{m} {s[m]['mean']:.3f} ± {s[m]['standard_error'] or math.nan:.3f}" for m in METRICS)
        print(f"{name}: {line}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
