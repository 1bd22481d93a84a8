"""Flicker of decoders on *generated* video: the latents a rollout of the world model makes,
decoded by the image decoder and by each given temporal decoder.

    python benchmarks/decoder_flicker_generated.py --model drivesim/assets/default_model \
        --decoders runs/models/ablation_frame runs/models/ablation_spatial \
        [--dataset data/world --rollouts 4 --steps 6 --threads 2 --seed 0 --out OUT]

Reconstructions of real clips (`benchmarks/autoencoder_quality.py`) start from latents that
are temporally consistent by construction; the latents a video LDM samples are not, and the
paper's temporal decoder is there to hide exactly that. Here the engine rolls out
`--rollouts` episodes of `--steps` control steps (seeded smooth random actions, mixed labels);
every output-rate latent it decodes is recorded, and the whole sequence is decoded again by
(a) the model's image decoder, frame by frame, (b) the model's own temporal decoder and (c)
each `--decoders` folder's temporal decoder (a decoder with every alpha fixed at 1 is a
frame-wise decoder). Each is scored with the evaluation suite's unpaired flicker
(`drivesim.eval.temporal.flicker`: |change − change_real| + |jitter − jitter_real| against
held-out real clips of the same length; jitter, the mean second temporal difference, is what
flicker and popping raise). All decoders must share the model's encoder (same latent space).

Prints JSON and writes <out>/decoder_flicker_generated.json and <out>/jitter.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from drivesim.autoencoder.loading import load_temporal_decoder
from drivesim.eval.temporal import flicker
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autoencoder_quality import held_out_clips  # noqa: E402


def generated_latents(engine: LearnedEngine, rollouts: int, steps: int, seed: int) -> torch.Tensor:
    """(rollouts, 1 + steps * frames_per_step, c, h, w) scaled latents, as the engine decodes them."""
    recorded: list[torch.Tensor] = []
    decode = engine.decode

    def recording(recent: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        recorded.append(new.detach().float().cpu())  # b n c h w
        return decode(recent, new)

    engine.decode = recording  # type: ignore[method-assign]
    rng = np.random.default_rng(seed)
    requests = [SceneRequest(i % 2, i % 3, seed=seed * 1000 + i) for i in range(rollouts)]
    out = engine.start(requests)
    action = np.zeros((rollouts, 2), np.float32)
    for _ in range(steps):
        action = np.clip(0.7 * action + 0.3 * rng.uniform(-1, 1, (rollouts, 2)), -1, 1).astype(np.float32)
        out = engine.step(out.state, action)
    return torch.cat(recorded, dim=1)  # b t c h w


def folder_decoders(folders: list[str], latent_scale: float) -> dict:
    """Folder name -> the `decode_video` of its temporal decoder; each must share the model's latent space."""
    decoders = {}
    for folder in folders:
        td = load_temporal_decoder(Path(folder))
        if abs(float(td.latent_scale) - latent_scale) > 1e-4:
            raise ValueError(f"{folder}: latent scale {td.latent_scale} differs from the model's; not its latent space")
        decoders[Path(folder).name] = td.decode_video
    return decoders


def scores(video: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    r = flicker(video.clamp(-1, 1), real)
    return {
        "change": r.generated.change,
        "jitter": r.generated.jitter,
        "flicker": r.flicker,
        "jitter_ratio_to_real": r.generated.jitter / r.real.jitter,
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["decoders"])
    jitter = [result["decoders"][n]["jitter"] * 255 for n in names]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.2))
    ax.bar(range(len(names)), jitter, color="tab:blue")
    ax.axhline(result["real"]["jitter"] * 255, color="k", ls="--", label="real clips")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("jitter (x255)")
    ax.set_title("generated video: second temporal difference")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drivesim/assets/default_model")
    parser.add_argument("--decoders", nargs="*", default=[], help="model folders with a temporal_decoder stage")
    parser.add_argument("--dataset", default="data/world", help="held-out real clips (val + test)")
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="control steps per rollout")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/decoder_flicker_generated")
    args = parser.parse_args()
    if args.rollouts < 1 or args.steps < 1:
        parser.error("--rollouts and --steps must be >= 1")
    torch.set_num_threads(args.threads)
    world = load(args.model)
    engine = LearnedEngine(world, EngineConfig())
    latents = generated_latents(engine, args.rollouts, args.steps, args.seed)
    real = held_out_clips(args.dataset, *engine.frame_size, 16, latents.shape[1])
    decoders = {"image decoder": world.autoencoder.decode_video}
    if world.temporal_decoder is not None:
        decoders[f"{Path(args.model).name} (temporal)"] = world.temporal_decoder.decode_video
    decoders |= folder_decoders(args.decoders, float(world.autoencoder.latent_scale))
    result: dict = {
        "model": args.model,
        "rollouts": args.rollouts,
        "frames_per_rollout": int(latents.shape[1]),
        "seed": args.seed,
        "real": scores(real, real) | {"clips": int(real.shape[0])},
        "decoders": {},
    }
    with torch.no_grad():
        for name, decode in decoders.items():
            result["decoders"][name] = scores(decode(latents).float(), real)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decoder_flicker_generated.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "jitter.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
