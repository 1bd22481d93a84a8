"""`drivesim eval real=DIR generated=DIR [probes=DIR] out=DIR [key=value ...]`.

real / generated: dataset folders (manifest.jsonl) or plain folders of MP4 files. Labels, boxes
and actions of the generated set (from its manifest and annotations) are taken as the requests
and commands the generator was given. Writes `out/report.json`, `out/drift.png` (metrics per
rollout window) and `out/storyboard.png` (real vs generated frames).

Under torchrun (`torchrun --nproc_per_node=N -m drivesim.cli.main eval ...`) rank r runs the probes
over clips r, r + N, ... of both sets and rank 0 merges them (drivesim.eval.sharded), computes the
distances and writes the outputs; the report equals the single-process one up to float round-off.
With options.device=cuda each rank uses its own GPU (LOCAL_RANK).

Standard FID / FVD: pass TorchScript files, e.g. `fid.path=/x/inception-2015-12-05.pt` and
`fvd.path=/x/i3d_torchscript.pt` (see drivesim.eval.torchscript_features for their settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import DictConfig

from drivesim.cli.typed_config import to_dataclass
from drivesim.eval.results import EvalOptions, EvalReport
from drivesim.eval.torchscript_features import TorchScriptFeatureConfig


def _fid_default() -> TorchScriptFeatureConfig:
    return TorchScriptFeatureConfig(layout="frames", input_range="uint8", kwargs={"return_features": True})


def _fvd_default() -> TorchScriptFeatureConfig:
    return TorchScriptFeatureConfig(
        layout="clips",
        input_range="symmetric",
        num_frames=16,
        kwargs={"rescale": False, "resize": True, "return_features": True},
    )


@dataclass
class EvalCommandConfig:
    real: str = ""  # folder of real clips
    generated: str = ""  # folder of generated clips
    probes: str = ""  # model folder with stages frame_probe and clip_probe; "": the bundled probes
    out: str = "outputs/eval"
    max_clips: int | None = None  # per set
    max_frames: int | None = None  # per clip
    storyboard_clips: int = 3
    options: EvalOptions = field(default_factory=EvalOptions)
    fid: TorchScriptFeatureConfig = field(default_factory=_fid_default)  # used when fid.path is set
    fvd: TorchScriptFeatureConfig = field(default_factory=_fvd_default)  # used when fvd.path is set


def evaluate_folders(cfg: EvalCommandConfig) -> EvalReport | None:
    """Load both folders and the probes, evaluate, write JSON and plots into cfg.out. Under torchrun
    the probe passes are split over ranks; rank 0 writes and returns the report, other ranks None."""
    from drivesim.eval.probe_io import load_probes
    from drivesim.eval.report import plot_drift, plot_storyboard, write_json
    from drivesim.eval.sharded import evaluate_sharded
    from drivesim.eval.torchscript_features import TorchScriptFeatures
    from drivesim.eval.video_sets import load_video_set
    from drivesim.training.distributed import cleanup, init_distributed

    for name in ("real", "generated"):
        if not getattr(cfg, name):
            raise ValueError(f"{name}= is required: drivesim eval real=DIR generated=DIR [probes=DIR] out=DIR")
    if not cfg.probes:
        from drivesim.paths import default_probes_dir

        cfg = replace(cfg, probes=str(default_probes_dir()))
    info = init_distributed("cuda" if cfg.options.device.startswith("cuda") else "cpu")
    try:
        options = replace(cfg.options, device=str(info.device)) if info.distributed else cfg.options
        probes = load_probes(cfg.probes, device=options.device)
        real = load_video_set(cfg.real, cfg.max_clips, cfg.max_frames)
        generated = load_video_set(cfg.generated, cfg.max_clips, cfg.max_frames)
        fid_net = TorchScriptFeatures(cfg.fid, options.device) if cfg.fid.path else None
        fvd_net = TorchScriptFeatures(cfg.fvd, options.device) if cfg.fvd.path else None
        report = evaluate_sharded(real, generated, probes, options, info, fid_net=fid_net, fvd_net=fvd_net)
        if report is not None:
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "report.json", report)
            plot_drift(report, out / "drift.png")
            plot_storyboard(real, generated, out / "storyboard.png", num_clips=cfg.storyboard_clips)
    finally:
        cleanup(info)
    return report


def _summary(report: EvalReport) -> str:
    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4g}"

    lines = [
        f"FID-probe {fmt(report.frechet.fid_probe)} (real halves {fmt(report.frechet.fid_probe_real_halves)})",
        f"FVD-probe {fmt(report.frechet.fvd_probe)} (real halves {fmt(report.frechet.fvd_probe_real_halves)})",
    ]
    if report.frechet.fid is not None or report.frechet.fvd is not None:
        lines.append(f"FID {fmt(report.frechet.fid)}  FVD {fmt(report.frechet.fvd)}")
    if report.condition is not None:
        c = report.condition
        lines.append(f"condition adherence: time_of_day {fmt(c.time_of_day)} crowdedness {fmt(c.crowdedness)}")
    if report.box is not None:
        lines.append(f"box adherence: recall {fmt(report.box.recall)} mean IoU {fmt(report.box.mean_iou)}")
    if report.action is not None:
        a = report.action
        lines.append(f"action adherence: steer r {fmt(a.steer.pearson)} accel r {fmt(a.accel.pearson)}")
    t = report.temporal
    lines.append(f"flicker {fmt(t.flicker)}  PSNR {fmt(t.psnr)}  SSIM {fmt(t.ssim)}  drift windows {len(report.drift)}")
    return "\n".join(lines)


def run_eval(cfg: DictConfig) -> EvalReport | None:
    command = to_dataclass(cfg, EvalCommandConfig)
    report = evaluate_folders(command)
    if report is not None:  # rank 0 (or the only process)
        print(_summary(report))
        print(f"wrote {Path(command.out) / 'report.json'}, drift.png, storyboard.png")
    return report
