"""Does the prediction model use the ego actions? Its denoising loss on held-out latent windows (2
context keyframes + 1 to predict, the engine's window) with the true interval actions, with the
actions unknown (null) and with another window's actions; same noise and tau for all three. A model
that follows actions has a clearly lower loss with the true ones. The gain is also given per quarter
of the diffusion-time range (`by_tau_band`): actions decide the coarse content, so their gain shows
at high tau, where the target frame must come from the context and the actions. A model with an
action forecast (`video.action_forecast`) also gets the forecast's mean squared error against the
true latent for the three action variants and for copying the last context frame (`forecast_mse`). A
model with the ego-motion warp (`video.ego_warp`) gets the warp of the window's own speeds (true),
none (null) or the other window's speeds with its actions; its `warp_mse` is the warp's own error
against the frame to predict, beside copying the last context frame. `--prediction` picks the stage
(e.g. video_ldm_stride4). With `--idm RUN_DIR` (a run trained with `action_consistency_weight`), the
latent inverse-dynamics model of its newest checkpoint reads the mean action off the real pairs
(last context frame, frame to predict) and, with a forecast, off (last context frame, forecast):
Pearson r per action against the true actions (`idm_r`). Prints JSON.

    python benchmarks/action_gain.py --model drivesim/assets/default_model --latents data/world_latents
    python benchmarks/action_gain.py --model M --prediction video_ldm_stride4 --latents data/world_explore_latents
"""

from __future__ import annotations

import argparse
import json

import torch
from safetensors.torch import load_file

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.autoencoder.latent_cache import LatentWindowConfig, LatentWindowDataset, collate_latent_windows
from drivesim.diffusion.action_forecast import forecast_error
from drivesim.diffusion.ego_warp import warp_context_latents
from drivesim.diffusion.latent_idm import LatentInverseDynamics
from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.rollout.world_model import load
from drivesim.training.clip_batch import clip_batch
from drivesim.training.run_state import RunCheckpointer

VARIANTS = ("true", "null", "other_window")
BANDS = 4  # equal quarters of tau in [0, num_steps)


def load_idm(run_dir: str, latent_channels: int) -> LatentInverseDynamics:
    """The latent inverse-dynamics model g of the newest checkpoint of a consistency run."""
    found = RunCheckpointer(run_dir).checkpoints()
    if not found or not (found[-1] / "idm.safetensors").is_file():
        raise SystemExit(
            f"--idm {run_dir}: no checkpoint with idm.safetensors (train with action_consistency_weight > 0)"
        )
    idm = LatentInverseDynamics(latent_channels)
    idm.load_state_dict(load_file(str(found[-1] / "idm.safetensors")))
    return idm.eval()


def pearson(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-column Pearson r of (n, k) a and b."""
    return [float(torch.corrcoef(torch.stack([a[:, k], b[:, k]]))[0, 1]) for k in range(a.shape[1])]


@torch.no_grad()
def action_gain(
    model_dir: str | None, latents: str, windows: int, batch: int, seed: int, idm_run: str | None = None,
    prediction: str = "video_ldm",
) -> dict[str, object]:
    world = load(model_dir)
    video = world.prediction(prediction)
    vcfg = video.model.config
    codec = FrameCodec(world.autoencoder, world.temporal_decoder)
    t, stride = int(video.window.num_frames), int(video.window.frame_stride)
    ds = LatentWindowDataset(latents, LatentWindowConfig(num_frames=t, stride=stride, split="val", window_step=stride))
    n = min(len(ds), windows)
    picks = torch.linspace(0, len(ds) - 1, n).long().tolist()
    totals = dict.fromkeys(VARIANTS, 0.0)
    steps = int(video.schedule.num_steps)
    edges = [steps * k // BANDS for k in range(BANDS + 1)]
    banded = {(k, name): 0.0 for k in range(BANDS) for name in ("true", "null")}
    forecasts = dict.fromkeys((*VARIANTS, "copy_last_context"), 0.0)
    warps = dict.fromkeys(("true", "other_window"), 0.0)  # the warp's own error against the frame to predict
    has_forecast = video.model.action_forecast is not None
    idm = load_idm(idm_run, video.model.latent_channels) if idm_run else None
    reads: dict[str, list[torch.Tensor]] = {"truth": [], "real": [], "forecast": []}
    for lo in range(0, n, batch):
        b = clip_batch(collate_latent_windows([ds[i] for i in picks[lo : lo + batch]]), use_boxes=False)
        size = b.z.shape[0]
        mask = torch.zeros(size, t)
        mask[:, : t - 1] = 1.0  # every frame but the last is context
        m = mask[:, :, None, None, None]  # (b, t, 1, 1, 1)
        forecasts["copy_last_context"] += float(((b.z[:, t - 2] - b.z[:, t - 1]) ** 2).mean()) * size / n
        for name in VARIANTS:
            acts, speed = (b.actions, b.ego_speed) if name != "other_window" else (
                torch.roll(b.actions, 1, dims=0), torch.roll(b.ego_speed, 1, dims=0)
            )  # another window's actions come with its speeds
            given = torch.full((size,), name != "null")
            warp = torch.zeros_like(b.z)
            if vcfg.ego_warp and name != "null":  # null: no warp (zeros)
                warp = warp_context_latents(b.z * m, mask, speed, given, vcfg.warp_interval, vcfg.camera(), codec)
                warps[name] += float(((warp[:, t - 1] - b.z[:, t - 1]) ** 2).mean()) * size / n
            cond = VideoConditioning(
                image=b.image, context_latents=b.z * m, context_mask=mask,
                context_noise_level=torch.zeros(size, dtype=torch.long), actions=acts,
                actions_given=given, ego_speed=speed, frame_rate=b.frame_rate, warp_latents=warp,
            )  # fmt: skip
            g = torch.Generator().manual_seed(seed + lo)
            tau = torch.randint(0, video.schedule.num_steps, (size,), generator=g)
            loss = diffusion_loss(video.model, b.z, cond, video.schedule, g, target=video.target, tau=tau, weight=1 - m)
            totals[name] += float(loss.loss) * size / n
            if has_forecast:
                forecast, valid = video.model.forecast(cond)
                forecasts[name] += float(forecast_error(forecast, valid, b.z)) * size / n
            if idm is not None and name == "true":
                gap = torch.ones(size)
                reads["truth"].append(b.actions[:, t - 1])
                reads["real"].append(idm(b.z[:, t - 2], b.z[:, t - 1], gap))
                if has_forecast:
                    reads["forecast"].append(idm(b.z[:, t - 2], forecast[:, t - 1], gap))
            if name == "other_window":
                continue
            for k in range(BANDS):
                g = torch.Generator().manual_seed(seed + lo + 7919 * (k + 1))
                tau = torch.randint(edges[k], edges[k + 1], (size,), generator=g)
                band = diffusion_loss(video.model, b.z, cond, video.schedule, g, target=video.target, tau=tau,
                                      weight=1 - m)  # fmt: skip
                banded[k, name] += float(band.loss) * size / n
    by_band = {
        f"{edges[k]}-{edges[k + 1]}": {
            "loss_true": banded[k, "true"], "loss_null": banded[k, "null"],
            "gain_vs_null": 1.0 - banded[k, "true"] / banded[k, "null"],
        }
        for k in range(BANDS)
    }  # fmt: skip
    return {
        "model": str(world.path), "prediction": prediction, "latents": latents, "windows": n, "loss": totals,
        "gain_vs_null": 1.0 - totals["true"] / totals["null"],
        "gain_vs_other_window": 1.0 - totals["true"] / totals["other_window"],
        "by_tau_band": by_band,
        **({"forecast_mse": forecasts} if has_forecast else {}),
        **({"warp_mse": {**warps, "copy_last_context": forecasts["copy_last_context"]}} if vcfg.ego_warp else {}),
        **({"idm_r": idm_r(reads)} if idm is not None else {}),
    }  # fmt: skip


def idm_r(reads: dict[str, list[torch.Tensor]]) -> dict[str, dict[str, float]]:
    """{"real" | "forecast": {"steer": r, "accel": r}} of g's reads against the true actions."""
    truth = torch.cat(reads["truth"])
    return {
        key: dict(zip(("steer", "accel"), pearson(torch.cat(values), truth)))
        for key, values in reads.items() if key != "truth" and values
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--latents", required=True, help="latent cache of the model's autoencoder (val split used)")
    parser.add_argument("--prediction", default="video_ldm", help="prediction stage, e.g. video_ldm_stride4")
    parser.add_argument("--windows", type=int, default=192)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--idm", default=None, metavar="RUN_DIR", help="a consistency run: r of its latent inverse dynamics"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = action_gain(args.model, args.latents, args.windows, args.batch, args.seed, args.idm, args.prediction)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
