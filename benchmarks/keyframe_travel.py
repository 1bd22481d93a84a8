"""How far forward do generated keyframes move? A probe-free reading of forward motion (issue 6).

Between consecutive keyframes k and k + 1 (decoded with the model folder's temporal decoder), the
forward travel is read as the distance D whose ego-motion warp (`drivesim.diffusion.ego_warp`) of
frame k best matches frame k + 1 on the rows that see the road (grid search, `--grid` metres).
Real held-out world keyframes at the same stride give the reading's own calibration (fitted vs true
travel: other cars, steering and the bonnet make the fit read low). For each model and each
`--warp-start` (EngineConfig.warp_start: keyframes sampled from the warp of the last one, SDEdit;
`--anchor-travel`: each new keyframe moved to the told travel, EngineConfig.anchor_travel),
rollouts from `--starts` real frames hold each told speed (`--speeds`, steer 0, the accel that
cancels drag) for `--steps` keyframes. A model whose keyframes follow the told speed has fitted
travel rising with it. The clip probe's reading of the same rollouts (`speed_response.py`) is a
different instrument: it reads real video well and generated, blurrier frames compressed towards
~12 m/s (docs/results.md, *Ego-motion warp*). JSON + plot.

    python benchmarks/keyframe_travel.py --model runs/models/M --prediction video_ldm_stride4 --warp-start 0 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.diffusion.ego_warp import GroundCamera, fit_travel
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_data import HELDOUT_SEED_BASE
from drivesim.rollout.ego_speed import MAX_SPEED
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig, SceneRequest
from drivesim.rollout.world_model import load
from drivesim.world.ego import command_for

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _video_eval import render_real  # noqa: E402


def real_travel(starts: int, stride: int, steps: int, grid: torch.Tensor, camera: GroundCamera) -> dict:
    real = render_real(HELDOUT_SEED_BASE, starts, stride * steps + 1, 64, 128, 30)
    x = uint8_to_video(real.frames)  # b t 3 h w
    keys = x[:, ::stride]
    fitted = fit_travel(
        rearrange(keys[:, :-1], "b k c h w -> (b k) c h w"),
        rearrange(keys[:, 1:], "b k c h w -> (b k) c h w"),
        grid,
        camera,
    ).numpy()
    true = float(np.mean(real.start_speed)) * stride / 30.0
    return {
        "fitted_m": float(fitted.mean()),
        "fitted_std_m": float(fitted.std()),
        "true_m": true,
        "fitted_over_true": float(fitted.mean()) / true,
        "frames": real.frames,
    }


@torch.no_grad()
def model_travel(
    model: str,
    prediction: str,
    warp_start: int,
    speeds: list[float],
    steps: int,
    keyframe_steps: int,
    start_frames: np.ndarray,
    grid: torch.Tensor,
    camera: GroundCamera,
    seed: int,
    anchor: bool = False,
) -> dict:
    world = load(model)
    engine = LearnedEngine(world,
        EngineConfig(prediction=prediction, keyframe_steps=keyframe_steps, interpolation_steps=2, warp_start=warp_start,
                     anchor_travel=anchor)
    )
    codec = FrameCodec(world.autoencoder, world.temporal_decoder)
    stride = engine.keyframe_stride
    out: dict[str, object] = {
        "model": model,
        "prediction": prediction,
        "warp_start": warp_start,
        "anchor_travel": anchor,
        "keyframe_stride": stride,
        "per_told_speed": {},
    }
    for v in speeds:
        requests = [
            SceneRequest(0, -1, seed + i, initial_frames=start_frames[i, :1], speed=v) for i in range(len(start_frames))
        ]
        state = engine.start(requests).state
        keys = [state.context[:, -1]]
        act = np.tile(np.array([0.0, command_for(0.0, v, MAX_SPEED)], np.float32), (len(start_frames), 1))
        for _ in range(steps):
            step = engine.step(state, act)
            state = step.state
            keys.append(step.keyframes)
        frames = torch.stack([codec.decode(k.float()) for k in keys], 1)  # b k 3 h w
        fitted = fit_travel(
            rearrange(frames[:, :-1], "b k c h w -> (b k) c h w"),
            rearrange(frames[:, 1:], "b k c h w -> (b k) c h w"),
            grid,
            camera,
        ).numpy()
        out["per_told_speed"][f"{v:g}"] = {
            "told_m": v * stride / world.fps,
            "fitted_m": float(fitted.mean()),
            "fitted_std_m": float(fitted.std()),
        }
    told = np.array([e["told_m"] for e in out["per_told_speed"].values()])
    fit = np.array([e["fitted_m"] for e in out["per_told_speed"].values()])
    out["slope"] = float(np.polyfit(told, fit, 1)[0]) if len(told) > 1 else None
    return out


def plot(results: list[dict], real: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in results:
        told = [e["told_m"] for e in r["per_told_speed"].values()]
        fit = [e["fitted_m"] for e in r["per_told_speed"].values()]
        ax.plot(told, fit, marker="o", label=f"{Path(r['model']).name}, warp_start {r['warp_start']}"
                + (", anchored" if r.get("anchor_travel") else ""))
    hi = max(e["told_m"] for r in results for e in r["per_told_speed"].values())
    ax.plot([0, hi], [0, hi * real["fitted_over_true"]], "k--", lw=0.8, label="real keyframes' fitted / true")
    ax.set_xlabel("told travel per keyframe (m)")
    ax.set_ylabel("fitted travel per keyframe (m)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="model folder (repeatable)")
    parser.add_argument("--prediction", default="video_ldm_stride4", help="keyframe-prediction stage")
    parser.add_argument("--warp-start", type=int, nargs="+", default=[0])
    parser.add_argument("--anchor-travel", action="store_true", help="EngineConfig.anchor_travel on")
    parser.add_argument("--speeds", type=float, nargs="+", default=[8.0, 32.0])
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="keyframes per rollout")
    parser.add_argument("--keyframe-steps", type=int, default=4)
    parser.add_argument("--grid", type=float, nargs=3, default=[0.0, 8.0, 0.25], metavar=("LO", "HI", "STEP"))
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/keyframe_travel")
    args = parser.parse_args()
    if any(not 0.0 <= v <= MAX_SPEED for v in args.speeds):
        parser.error(f"--speeds {args.speeds}: allowed 0..{MAX_SPEED:g} m/s")
    lo, hi, step = args.grid
    if not (0.0 <= lo < hi and step > 0):
        parser.error(f"--grid {args.grid}: need 0 <= LO < HI and STEP > 0 (metres)")
    torch.set_num_threads(args.threads)
    camera, grid = GroundCamera(), torch.arange(lo, hi + 1e-9, step)
    stride = load(args.model[0]).prediction(args.prediction).window.frame_stride
    real = real_travel(args.starts, int(stride), args.steps, grid, camera)
    results = [model_travel(m, args.prediction, w, args.speeds, args.steps, args.keyframe_steps, real["frames"], grid,
                            camera, args.seed, args.anchor_travel)
               for m in args.model for w in args.warp_start]  # fmt: skip
    real.pop("frames")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, real, out / "keyframe_travel.png")
    report = {"real_keyframes": real, "results": results, "settings": vars(args)}
    (out / "keyframe_travel.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
