"""Image-LDM quality with the evaluation probes: FID-probe, label adherence, box adherence, sample grid.

    python benchmarks/image_ldm_quality.py --model runs/models/default [--probes DIR] \
        --out benchmarks/results/image_ldm

Writes `<out>/quality.json` and `<out>/samples_grid.png` (one command, seeded, reproducible).
`--seeds S ...` evaluates several sampling seeds on the same real sets: `points` per seed, and
`summary` (mean and standard error per metric, `_seed_summary.py`) plus `seeds.png`; `point`
is then the first seed's. What is measured:
- FID-probe (Fréchet distance of frame-probe features) of label-conditioned samples against
  held-out real frames of the procedural world, next to two floors: real vs real (two disjoint
  held-out sets) and real vs autoencoder reconstructions of real frames (the decoder's own cost);
- label adherence: probe-predicted time of day / crowdedness of samples made from labels only
  (boxes unknown), every (time_of_day, crowdedness) pair equally often;
- box adherence: layouts (and labels) of held-out real frames requested; detector recall of the
  requested boxes at IoU >= 0.5 (boxes at least 8 px high, as `drivesim.eval.adherence`), next
  to the detector's recall on the real frames themselves and on their reconstructions; also
  recall at IoU 0.1 / 0.3 / 0.7 (a car drawn near its box vs not at all) and per box height;
- the grid: rows day/night x low/high crowdedness (labels only, 4 seeds each), then three box
  layouts from held-out frames: the real frame, and samples with the requested boxes drawn on.
`--decoders DIR ...` scores other temporal decoders (model folders with a `temporal_decoder`
stage for the same autoencoder) on the very latents the model sampled: every metric and the
reconstruction floors per decoder, and the paired per-seed differences from the model's own
decoder (`decoders` in the JSON).
Real frames come from world seeds 3_000_000 + i and 4_000_000 + i, disjoint from the training
data (`drivesim data synth`, seeds < 1_000_000) and from the probes' own training seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from drivesim.autoencoder.loading import load_temporal_decoder
from drivesim.eval.adherence import condition_adherence, predict_conditions
from drivesim.eval.features import frame_features
from drivesim.eval.frame_probe import FrameProbe
from drivesim.eval.frechet import frechet_from_features
from drivesim.eval.probe_io import load_probes
from drivesim.paths import default_probes_dir
from drivesim.rollout.compose import (
    BoxLayout,
    ComposeModels,
    load_compose_models,
)
from drivesim.sampling.image import ImageGuidance

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _box_scores import BoxScores, box_scores  # noqa: E402
from _image_samples import Timed, box_samples, label_samples, redecode, sample_grid, write_png  # noqa: E402
from _real_frames import (  # noqa: E402
    REAL_SEED_A,
    REAL_SEED_B,
    RealFrames,
    as_video,
    reconstruct,
    render_real_frames,
)
from _seed_summary import plot_seeds, seed_summary  # noqa: E402

TARGETS = {"time_of_day_accuracy": 0.98, "crowdedness_accuracy": 0.85, "box_recall": 0.6}  # issue targets


@dataclass(frozen=True)
class QualityPoint:
    """Metrics of one (steps, guidance) setting."""

    steps: int
    guidance_labels: float
    guidance_boxes: float
    guidance_crowdedness: float
    box_interval: list[float]  # fractions of the diffusion times where box guidance acts
    contrast: list[str]  # labels guided against their neighbouring label
    layout_prior: bool  # label-only samples composed on a layout drawn from the layout prior
    fid_probe: float  # label-conditioned samples vs real set A
    time_of_day_accuracy: float | None
    crowdedness_accuracy: float | None
    both_accuracy: float | None
    crowdedness_confusion: dict[str, int]  # "requested->probed": label-only samples
    box_recall: float | None  # IoU >= 0.5
    box_mean_iou: float | None
    box_count: int
    box_recall_by_iou: dict[str, float | None]  # IoU threshold -> recall
    box_recall_by_height: dict[str, float | None]  # "lo-hi px" box height -> recall at IoU 0.5
    box_condition_time_of_day_accuracy: float | None  # labels of the box-conditioned samples
    box_condition_crowdedness_accuracy: float | None
    images_per_second: float  # wall clock, sampling + decoding, this CPU
    cpu_seconds_per_image: float


def evaluate_point(
    models: ComposeModels,
    probe: FrameProbe,
    real_a: RealFrames,
    real_a_features: np.ndarray,
    box_real: RealFrames,
    per_pair: int,
    steps: int,
    guidance: ImageGuidance,
    seed: int,
    layout_prior: bool = False,
    decoders: dict[str, ComposeModels] | None = None,
) -> PointResult:
    """Metrics at one setting, the label samples and the box samples; with `decoders`, the same
    latents scored through each of them too."""
    lab, tods, crowds = label_samples(models, per_pair, steps, guidance, seed, layout_prior)
    box, layouts = box_samples(models, box_real, steps, guidance, seed + 1)
    point = score_point(
        probe, real_a_features, box_real, lab, tods, crowds, box, layouts, steps, guidance, layout_prior
    )
    others = {
        name: score_point(probe, real_a_features, box_real, redecode(other, lab), tods, crowds,
                          redecode(other, box), layouts, steps, guidance, layout_prior)
        for name, other in (decoders or {}).items()
    }  # fmt: skip
    return PointResult(point, lab.frames, box.frames, others)


@dataclass(frozen=True)
class PointResult:
    point: QualityPoint
    label_frames: np.ndarray  # (n, H, W, 3) uint8
    box_frames: np.ndarray
    decoders: dict[str, QualityPoint]  # the same latents through other decoders (evaluate_point's `decoders`)


def score_point(
    probe: FrameProbe,
    real_a_features: np.ndarray,
    box_real: RealFrames,
    lab: Timed,
    tods: list[str],
    crowds: list[str],
    box: Timed,
    layouts: list[BoxLayout],
    steps: int,
    guidance: ImageGuidance,
    layout_prior: bool,
) -> QualityPoint:
    """The metrics of label samples `lab` and box samples `box` (one per box_real frame)."""
    pred = predict_conditions(probe, as_video(lab.frames))
    cond_acc = condition_adherence(pred, tods, crowds)
    confusion = Counter(f"{want}->{got}" for want, got in zip(crowds, pred.crowdedness))
    fid = frechet_from_features(frame_features(probe, as_video(lab.frames)), real_a_features)
    boxes = box_scores(probe, box.frames, [lay.xyxy for lay in layouts])
    box_pred = predict_conditions(probe, as_video(box.frames))
    box_cond = condition_adherence(box_pred, box_real.time_of_day, box_real.crowdedness)
    n = len(lab.frames) + len(box.frames)
    return QualityPoint(
        steps=steps,
        guidance_labels=guidance.time_of_day,
        guidance_boxes=guidance.boxes,
        guidance_crowdedness=guidance.crowdedness,
        box_interval=list(guidance.box_interval),
        contrast=list(guidance.contrast),
        layout_prior=layout_prior,
        fid_probe=fid,
        time_of_day_accuracy=cond_acc.time_of_day,
        crowdedness_accuracy=cond_acc.crowdedness,
        both_accuracy=cond_acc.both,
        crowdedness_confusion=dict(sorted(confusion.items())),
        box_recall=boxes.recall,
        box_mean_iou=boxes.mean_iou,
        box_count=boxes.count,
        box_recall_by_iou=boxes.by_iou,
        box_recall_by_height=boxes.by_height,
        box_condition_time_of_day_accuracy=box_cond.time_of_day,
        box_condition_crowdedness_accuracy=box_cond.crowdedness,
        images_per_second=n / (lab.seconds + box.seconds),
        cpu_seconds_per_image=(lab.cpu_seconds + box.cpu_seconds) / n,
    )


@dataclass(frozen=True)
class Floors:
    """Reference values with no generative model in the loop."""

    fid_real_vs_real: float
    fid_real_vs_reconstructed: float
    real_time_of_day_accuracy: float | None
    real_crowdedness_accuracy: float | None
    real_box_recall: float | None  # detector on the real frames with their own boxes
    reconstructed_box_recall: float | None
    real_box_recall_by_iou: dict[str, float | None]
    reconstructed_box_recall_by_iou: dict[str, float | None]
    real_box_recall_by_height: dict[str, float | None]
    reconstructed_box_recall_by_height: dict[str, float | None]
    real_frames: int


@dataclass(frozen=True)
class Setup:
    models: ComposeModels
    probe: FrameProbe
    real_a: RealFrames
    real_a_features: np.ndarray
    real_b: RealFrames
    box_real: RealFrames
    floors: Floors


def setup(model: str, probes: str, real_episodes: int, box_episodes: int) -> Setup:
    """Load the models and probes, render the held-out real sets and compute the floors."""
    models = load_compose_models(model)
    probe = load_probes(probes).frame
    height, width = models.image_size
    real_a = render_real_frames(REAL_SEED_A, real_episodes, 4, height, width)
    real_b = render_real_frames(REAL_SEED_B, real_episodes, 4, height, width)
    box_real = render_real_frames(REAL_SEED_B + 500_000, box_episodes, 2, height, width)
    feats_a = frame_features(probe, as_video(real_a.frames))
    recon_fid, recon_boxes = reconstruction_floors(models, probe, feats_a, real_b, box_real)
    real_boxes = box_scores(probe, box_real.frames, [lay.xyxy for lay in box_real.layouts])
    real_pred = condition_adherence(
        predict_conditions(probe, as_video(real_b.frames)), real_b.time_of_day, real_b.crowdedness
    )
    floors = Floors(
        fid_real_vs_real=frechet_from_features(feats_a, frame_features(probe, as_video(real_b.frames))),
        fid_real_vs_reconstructed=recon_fid,
        real_time_of_day_accuracy=real_pred.time_of_day,
        real_crowdedness_accuracy=real_pred.crowdedness,
        real_box_recall=real_boxes.recall,
        reconstructed_box_recall=recon_boxes.recall,
        real_box_recall_by_iou=real_boxes.by_iou,
        reconstructed_box_recall_by_iou=recon_boxes.by_iou,
        real_box_recall_by_height=real_boxes.by_height,
        reconstructed_box_recall_by_height=recon_boxes.by_height,
        real_frames=len(real_a.frames),
    )
    return Setup(models, probe, real_a, feats_a, real_b, box_real, floors)


def reconstruction_floors(
    models: ComposeModels, probe: FrameProbe, feats_a: np.ndarray, real_b: RealFrames, box_real: RealFrames
) -> tuple[float, BoxScores]:
    """FID-probe of real set A vs reconstructions of set B, and the detector's scores of the box
    set's own boxes on its reconstructions (both through `models`' decoder)."""
    fid = frechet_from_features(feats_a, frame_features(probe, as_video(reconstruct(models, real_b.frames))))
    return fid, box_scores(probe, reconstruct(models, box_real.frames), [lay.xyxy for lay in box_real.layouts])


def load_decoders(models: ComposeModels, folders: list[str]) -> dict[str, ComposeModels]:
    """`models` with the temporal decoder of each folder (named by the folder) in place of its own."""
    out = {}
    for folder in folders:
        td = load_temporal_decoder(Path(folder))
        if td.ae_cfg != models.autoencoder.cfg or abs(float(td.latent_scale) - models.ldm.latent.scale) > 1e-3:
            raise ValueError(f"--decoders {folder}: its temporal decoder is for another autoencoder than the model's")
        out[Path(folder).name] = dataclasses.replace(models, temporal_decoder=td)
    return out


def decoder_report(s: Setup, decoders: dict[str, ComposeModels], results: dict[int, PointResult]) -> dict:
    """Per decoder: its reconstruction floors, its points per seed, and per metric the paired
    difference from the model's own decoder (mean and standard error over seeds)."""
    keys = ("box_recall", "box_mean_iou", "time_of_day_accuracy", "crowdedness_accuracy", "fid_probe")
    report = {}
    for name, models in decoders.items():
        fid, boxes = reconstruction_floors(models, s.probe, s.real_a_features, s.real_b, s.box_real)
        per_seed = {str(seed): dataclasses.asdict(r.decoders[name]) for seed, r in results.items()}
        paired = {}
        for key in keys:
            diffs = np.array([getattr(r.decoders[name], key) - getattr(r.point, key) for r in results.values()])
            se = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else None
            paired[key] = {"mean": float(diffs.mean()), "se": se, "per_seed": diffs.tolist()}
        report[name] = {
            "fid_real_vs_reconstructed": fid,
            "reconstructed_box_recall": boxes.recall,
            "reconstructed_box_recall_by_iou": boxes.by_iou,
            "reconstructed_box_recall_by_height": boxes.by_height,
            "points": per_seed,
            "minus_model_decoder": paired,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/models/default", help="folder with image_ldm + autoencoder")
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder (default: bundled)")
    parser.add_argument("--out", default="benchmarks/results/image_ldm")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=3.0, help="label guidance scale")
    parser.add_argument("--box-guidance", type=float, default=None, help="default: --guidance")
    parser.add_argument("--crowdedness-guidance", type=float, default=None, help="default: --guidance")
    parser.add_argument("--contrast", nargs="*", default=[], choices=["time_of_day", "crowdedness"],
                        help="labels guided against their neighbouring label instead of the null")
    parser.add_argument("--box-interval", type=float, nargs=2, default=(0.0, 1.0), metavar=("LO", "HI"),
                        help="fractions of the diffusion times where box guidance acts (default: all)")
    parser.add_argument("--layout-prior", action="store_true",
                        help="label-only samples on layouts drawn from the model's layout prior")
    parser.add_argument("--per-pair", type=int, default=16, help="label-only samples per (tod, crowd) pair")
    parser.add_argument("--real-episodes", type=int, default=48, help="episodes per real set (4 frames each)")
    parser.add_argument("--box-episodes", type=int, default=48, help="episodes of requested layouts (2 each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="several sampling seeds on one setup: per-seed points, mean and standard error")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--decoders", nargs="+", default=[], metavar="DIR",
                        help="model folders whose temporal decoders also decode the same samples")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    s = setup(args.model, args.probes, args.real_episodes, args.box_episodes)
    scales = ImageGuidance.from_scales(
        args.guidance, args.box_guidance, args.crowdedness_guidance, box_interval=args.box_interval
    )
    guidance = dataclasses.replace(scales, contrast=tuple(args.contrast))
    seeds = args.seeds or [args.seed]
    decoders = load_decoders(s.models, args.decoders)
    results = {
        seed: evaluate_point(s.models, s.probe, s.real_a, s.real_a_features, s.box_real, args.per_pair,
                             args.steps, guidance, seed, args.layout_prior, decoders)
        for seed in tqdm(seeds, desc="sampling seeds")
    }  # fmt: skip
    points = {seed: r.point for seed, r in results.items()}
    point = points[seeds[0]]
    report = {
        "model": str(args.model),
        "probes": str(args.probes),
        "box_conditioning": s.models.ldm.unet.config.box_conditioning,
        "target": s.models.ldm.target,
        "point": dataclasses.asdict(point),
        "floors": dataclasses.asdict(s.floors),
        "targets": {"time_of_day": TARGETS["time_of_day_accuracy"], "crowdedness": TARGETS["crowdedness_accuracy"],
                    "box_recall_iou50": TARGETS["box_recall"]},
        "cpu": {"threads": args.threads, "load_average": list(os.getloadavg())},
    }
    out.mkdir(parents=True, exist_ok=True)
    if len(seeds) > 1:
        per_seed = {k: dataclasses.asdict(v) for k, v in points.items()}
        report["points"] = {str(k): v for k, v in per_seed.items()}
        report["summary"] = seed_summary(per_seed, (*TARGETS, "fid_probe"))
        plot_seeds(report["summary"], TARGETS, out / "seeds.png")
    if decoders:
        report["decoders"] = decoder_report(s, decoders, results)
    (out / "quality.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    if not args.no_grid:
        grid = sample_grid(s.models, s.box_real, args.steps, guidance, args.seed, args.layout_prior)
        write_png(out / "samples_grid.png", grid)
        print(f"grid -> {out / 'samples_grid.png'}")


if __name__ == "__main__":
    main()
