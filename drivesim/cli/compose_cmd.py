"""`drivesim compose boxes=FILE time_of_day=night crowdedness=high out=PNG ...`: compose a scene.

Writes the first frame of a scene made by the image LDM from a box layout (a JSON or YAML
list of normalised [x1, y1, x2, y2] boxes, each optionally followed by "car" / "truck")
and labels. `boxes=prior` (the default) draws a layout for the labels from the model's layout
prior (the layouts of training frames) and composes with it, writing that layout beside the
image as `<out>.boxes.json` (a box file to edit and reuse); `boxes=null` lets the image LDM place
the vehicles itself (fewer of them: docs/results.md, *Layout prior*); `time_of_day=null` /
`crowdedness=null` leave a label free. `draw_boxes=true` draws the boxes on top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import DictConfig

from drivesim.cli.typed_config import to_dataclass

_SUFFIXES = (".png", ".jpg", ".jpeg")
PRIOR = "prior"  # boxes=prior: sample the layout from the model's layout prior


@dataclass
class ComposeConfig:
    model: str = "runs/models/default"  # model folder with stages image_ldm and autoencoder
    boxes: str | None = PRIOR  # JSON/YAML file of boxes; "prior": sampled from the layout prior; null: unknown
    time_of_day: str | None = "day"  # day | night | null
    crowdedness: str | None = "medium"  # low | medium | high | null
    out: str = "outputs/compose.png"
    seed: int = 0
    steps: int = 50
    guidance: float = 3.0  # classifier-free guidance scale of the labels (and boxes, see below)
    box_guidance: float | None = 5.0  # null: same as guidance
    box_interval: tuple[float, float] = (0.0, 1.0)  # fractions of the diffusion times where box guidance acts
    crowdedness_guidance: float | None = 7.0  # null: same as guidance (docs/results.md: Guidance interval)
    crowdedness_contrast: bool = True  # against the next sparser level, not the null (docs/results.md)
    draw_boxes: bool = False
    scale: int = 1  # nearest-neighbour upscaling of the written image (boxes drawn after)
    num_threads: int = 2

    def __post_init__(self) -> None:
        if Path(self.out).suffix.lower() not in _SUFFIXES:
            raise ValueError(f"out={self.out!r} is not allowed; expected a file name ending in {list(_SUFFIXES)}")
        if not 1 <= self.scale <= 16:
            raise ValueError(f"scale={self.scale} is not allowed; expected 1..16")
        if self.num_threads < 1:
            raise ValueError(f"num_threads={self.num_threads} must be >= 1")


@dataclass(frozen=True)
class ComposeResult:
    out: Path
    frame: np.ndarray  # (H, W, 3) uint8 as written (after scaling and box drawing)


def run_compose(cfg: DictConfig) -> ComposeResult:
    """Compose one frame and write it to `out`."""
    from drivesim.data.atomic import atomic_path, atomic_write_text
    from drivesim.rollout.compose import (
        compose_scene,
        layout_entries,
        load_box_file,
        load_compose_models,
        overlay_boxes,
        sample_layout,
    )
    from drivesim.sampling.image import ImageGuidance

    config: ComposeConfig = to_dataclass(cfg, ComposeConfig)
    torch.set_num_threads(config.num_threads)
    models = load_compose_models(config.model)
    out = Path(config.out)
    if config.boxes == PRIOR:
        gen = torch.Generator().manual_seed(config.seed)
        layout = sample_layout(models, config.time_of_day, config.crowdedness, gen)
        atomic_write_text(out.with_suffix(".boxes.json"), json.dumps(layout_entries(layout)))
    else:
        layout = None if config.boxes is None else load_box_file(config.boxes, models.ldm.max_boxes)
    guidance = ImageGuidance.from_scales(
        config.guidance,
        config.box_guidance,
        config.crowdedness_guidance,
        config.crowdedness_contrast,
        config.box_interval,
    )
    frame = compose_scene(
        models, layout, config.time_of_day, config.crowdedness, config.seed, config.steps, guidance, draw_boxes=False
    )
    if config.scale > 1:
        frame = cv2.resize(
            frame, (frame.shape[1] * config.scale, frame.shape[0] * config.scale), interpolation=cv2.INTER_NEAREST
        )
    if config.draw_boxes and layout is not None:
        frame = overlay_boxes(frame, layout)
    suffix = out.suffix.lower()
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode the frame as {suffix}")
    with atomic_path(out, suffix=suffix) as tmp:
        tmp.write_bytes(encoded.tobytes())
    boxes_text = "unknown" if layout is None else f"{len(layout)}"
    if config.boxes == PRIOR:
        boxes_text += f" (from the layout prior -> {out.with_suffix('.boxes.json')})"
    print(
        f"compose: {frame.shape[1]}x{frame.shape[0]} frame, time_of_day={config.time_of_day}, "
        f"crowdedness={config.crowdedness}, boxes={boxes_text}, seed={config.seed}, steps={config.steps} -> {out}"
    )
    return ComposeResult(out=out, frame=frame)
