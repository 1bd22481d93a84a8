"""The image-LDM samples `image_ldm_quality.py` scores and shows: timed generation (wall and CPU
seconds), samples per label pair (boxes unknown or from the layout prior), samples on held-out
frames' box layouts, the same latents through another decoder, and the sample grid PNG."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from _real_frames import LABEL_PAIRS, RealFrames, largest

from drivesim.rollout.compose import (
    BoxLayout,
    ComposeModels,
    decode_latents,
    generate_frames,
    generate_latents,
    make_conditioning,
    overlay_boxes,
    sample_layout,
)
from drivesim.sampling.image import ImageGuidance
from drivesim.world import TIME_OF_DAY


@dataclass(frozen=True)
class Timed:
    frames: np.ndarray
    latents: torch.Tensor  # (n, C, h, w) scaled, what the frames were decoded from
    seconds: float
    cpu_seconds: float


def timed_generate(models: ComposeModels, cond, steps: int, guidance: ImageGuidance, seed: int) -> Timed:
    wall, cpu = time.perf_counter(), time.process_time()
    latents = generate_latents(models, cond, steps, guidance, torch.Generator().manual_seed(seed), batch_size=48)
    frames = decode_latents(models, latents)
    return Timed(frames, latents, time.perf_counter() - wall, time.process_time() - cpu)


def redecode(models: ComposeModels, timed: Timed) -> Timed:
    """The same latents through `models`' decoder (the timing stays the sampling run's)."""
    return dataclasses.replace(timed, frames=decode_latents(models, timed.latents))


def prior_layouts(
    models: ComposeModels, tods: list[str], crowds: list[str], seed: int, layout_prior: bool
) -> list[BoxLayout | None]:
    """Per label pair a layout drawn from the layout prior (seeded by seed + 7), or all None (boxes unknown)."""
    if not layout_prior:
        return [None] * len(tods)
    gen = torch.Generator().manual_seed(seed + 7)
    return [sample_layout(models, t, c, gen) for t, c in zip(tods, crowds)]


def label_samples(
    models: ComposeModels, per_pair: int, steps: int, guidance: ImageGuidance, seed: int, layout_prior: bool = False
):
    """per_pair samples of every (time_of_day, crowdedness) pair: boxes unknown, or (layout_prior)
    a layout drawn for the labels from the model's layout prior (the labels still requested)."""
    tods = [t for t, _ in LABEL_PAIRS for _ in range(per_pair)]
    crowds = [c for _, c in LABEL_PAIRS for _ in range(per_pair)]
    cond = make_conditioning(prior_layouts(models, tods, crowds, seed, layout_prior), tods, crowds)
    return timed_generate(models, cond, steps, guidance, seed), tods, crowds


def box_samples(models: ComposeModels, real: RealFrames, steps: int, guidance: ImageGuidance, seed: int):
    """One sample per real frame, with its layout (largest max_boxes boxes) and labels requested."""
    layouts = [largest(lay, models.ldm.max_boxes) for lay in real.layouts]
    cond = make_conditioning(layouts, real.time_of_day, real.crowdedness)
    return timed_generate(models, cond, steps, guidance, seed), layouts


def sample_grid(
    models: ComposeModels,
    box_real: RealFrames,
    steps: int,
    guidance: ImageGuidance,
    seed: int,
    layout_prior: bool = False,
) -> np.ndarray:
    """Rows: day/night x low/high (4 seeds each, labels only, or on layouts from the layout prior);
    then 3 layouts: real frame with its boxes, and 3 samples with the requested boxes drawn.
    Upscaled x2 for viewing."""
    combos = [(t, c) for t in TIME_OF_DAY for c in ("low", "high")]
    tods = [t for t, _ in combos for _ in range(4)]
    crowds = [c for _, c in combos for _ in range(4)]
    layouts = prior_layouts(models, tods, crowds, seed, layout_prior)
    labels = generate_frames(
        models, make_conditioning(layouts, tods, crowds), steps, guidance, torch.Generator().manual_seed(seed)
    )
    rows = [np.concatenate(list(labels[4 * r : 4 * r + 4]), axis=1) for r in range(4)]
    counts = np.array([len(lay) for lay in box_real.layouts])
    picks = [int(np.argmin(np.abs(counts - k))) for k in (1, 3, 6)]
    for p in picks:
        layout = largest(box_real.layouts[p], models.ldm.max_boxes)
        cond = make_conditioning([layout] * 3, [box_real.time_of_day[p]] * 3, [box_real.crowdedness[p]] * 3)
        samples = generate_frames(models, cond, steps, guidance, torch.Generator().manual_seed(seed + p))
        tiles = [overlay_boxes(box_real.frames[p], layout)] + [overlay_boxes(s, layout) for s in samples]
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    return cv2.resize(grid, (grid.shape[1] * 2, grid.shape[0] * 2), interpolation=cv2.INTER_NEAREST)


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
