"""benchmarks/ego_warp_fit.py on world frames through a stand-in autoencoder (pooling x4)."""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file

from drivesim.autoencoder.latent_cache import CACHE_FORMAT, CACHE_VERSION, LatentWindowConfig, LatentWindowDataset
from drivesim.diffusion.ego_warp import GroundCamera
from drivesim.world.world import World
from tests.benchmarks import load_benchmark


class PoolCodec:
    def decode(self, z):
        return F.interpolate(z, scale_factor=4, mode="bilinear", align_corners=False)

    def encode(self, x):
        return F.avg_pool2d(x, 4)


def _world_cache(root: Path, frames: int = 24) -> Path:
    """One test clip of the world (no traffic drawn), 'latents' = frames pooled 4 x 4, true ego speeds."""
    w = World()
    w.reset(seed=0, crowdedness="low")
    images, speeds = [], []
    for _ in range(frames):
        w.step(np.array([0.0, 0.3], np.float32))
        images.append(w.render(64, 128, draw_vehicles=False).image)
        speeds.append(w._scene().ego.speed)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    (root / "latents").mkdir(parents=True)
    (root / "cache.yaml").write_text(yaml.safe_dump({"format": CACHE_FORMAT, "version": CACHE_VERSION,
                                                     "latent_scale": 1.0}))
    save_file({
        "latents": F.avg_pool2d(x, 4).contiguous(),
        "actions": torch.tensor([[0.0, 0.3]] * frames),
        "ego": torch.stack([torch.tensor(speeds, dtype=torch.float32), *torch.zeros(2, frames)], 1).contiguous(),
    }, str(root / "latents" / "c0.safetensors"))  # fmt: skip
    (root / "manifest.jsonl").write_text(json.dumps({
        "id": "c0", "latents": "latents/c0.safetensors", "num_frames": frames, "fps": 30.0,
        "time_of_day": "day", "crowdedness": "low", "split": "test", "source": "test",
    }) + "\n")  # fmt: skip
    return root


def test_the_pixel_warp_at_the_true_speed_beats_copying_and_wrong_speeds(tmp_path):
    fit = load_benchmark("ego_warp_fit").fit
    ds = LatentWindowDataset(_world_cache(tmp_path / "cache"), LatentWindowConfig(num_frames=2, stride=4, split="test"))
    out = fit(ds, [0.0, 1.0, 2.0], max_windows=8, interval=4 / 30, camera=GroundCamera(), codec=PoolCodec())
    entry = out["frame_1"]
    road = entry["pixels"]["mse_road"]
    assert out["windows"] == len(ds) and out["mean_speed_mps"] > 10.0
    assert road[1] < 0.8 * entry["copy_road"] and road[1] < road[2]
    assert entry["pixels"]["best_scale"] == 1.0 and entry["pixels"]["true_speed_vs_copy_road"] < 0.8
