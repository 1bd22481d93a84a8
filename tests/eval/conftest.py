import numpy as np
import pytest
import torch

from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.frame_probe import FrameProbe, FrameProbeConfig
from drivesim.eval.probe_io import Probes


def synthetic_clips(n: int, t: int, h: int = 32, w: int = 64, seed: int = 0) -> np.ndarray:
    """(n, t, h, w, 3) uint8: drifting stripes, a fixed fine texture and a moving bright box;
    per clip random colour, phase and speed."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((n, t, h, w, 3), np.uint8)
    for i in range(n):
        freq, speed, phase = rng.uniform(0.15, 0.4), rng.uniform(0.5, 1.5), rng.uniform(0, 6.28)
        colour = rng.uniform(0.4, 1.0, 3)
        bx, by, bv = rng.uniform(0, w - 10), rng.uniform(0, h - 8), rng.uniform(-1, 1)
        texture = rng.uniform(-0.12, 0.12, (h, w, 1))
        for k in range(t):
            base = 0.5 + 0.4 * np.sin(freq * (xs + 0.5 * ys) + phase + speed * k)
            img = base[..., None] * colour + texture
            x0 = int(np.clip(bx + bv * k, 0, w - 10))
            img[int(by) : int(by) + 8, x0 : x0 + 10] = 1.0
            out[i, k] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


@pytest.fixture
def clips() -> np.ndarray:
    return synthetic_clips(8, 12)


@pytest.fixture(scope="session")
def tiny_probes() -> Probes:
    """Untrained probes with fixed weights; batch-norm statistics calibrated on synthetic clips so
    their features have unit scale (untrained but deterministic feature extractors)."""
    torch.manual_seed(0)
    frame = FrameProbe(FrameProbeConfig(height=32, width=64, widths=[8, 8, 16, 16], head_width=8))
    clip = ClipProbe(
        ClipProbeConfig(height=32, width=64, num_frames=4, frame_stride=1, widths=[8, 8, 16, 16], fps=10.0)
    )
    video = torch.from_numpy(synthetic_clips(8, 4, seed=99)).permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0
    for module in (frame, clip):
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the calibration passes
        module.train()
    with torch.no_grad():
        frame(video.flatten(0, 1))
        clip(video)
    return Probes(frame=frame, clip=clip).eval()


@pytest.fixture
def make_clips():
    return synthetic_clips
