"""Scene composition: the first frame of a scene from a box layout and labels (DESIGN.md §1 stage 3).

    frame = compose_scene("runs/models/default", boxes=[[0.40, 0.50, 0.55, 0.70, "car"]],
                          time_of_day="night", crowdedness="high", seed=0)   # (H, W, 3) uint8

The image LDM samples scaled latents with classifier-free guidance (`ImageGuidance`), the
image decoder of the autoencoder turns them into pixels. Boxes are normalised
[x1, y1, x2, y2] in [0, 1] (x to the right, y down), optionally followed by a class
("car" / "truck" or its index). ``boxes=None`` leaves the layout to the model (boxes
unknown); ``boxes=[]`` asks for an empty road.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat

from drivesim.autoencoder.loading import TEMPORAL_DECODER_STAGE, load_autoencoder, load_temporal_decoder
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder
from drivesim.data.annotations import FrameBoxes
from drivesim.data.show import draw_boxes as draw_frame_boxes
from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.image_model import ImageLDM
from drivesim.diffusion.layout_prior import LayoutPrior, load_layout_prior
from drivesim.rollout.types import SceneRequest
from drivesim.sampling.image import ImageGuidance, sample_image
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY, VEHICLE_CLASSES

BoxEntry = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True)
class BoxLayout:
    """A validated layout: xyxy (n, 4) float32 normalised, classes (n,) int64 into VEHICLE_CLASSES."""

    xyxy: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])


@dataclass(frozen=True)
class ComposeModels:
    """What composition needs: the image LDM and the autoencoder whose latents it models, the
    folder's temporal decoder when it has one (frames are then decoded by it, as rollouts are),
    and its layout prior when it has one (`sample_layout`)."""

    ldm: ImageLDM
    autoencoder: Autoencoder
    temporal_decoder: TemporalDecoder | None = None
    layout_prior: LayoutPrior | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        f = self.autoencoder.cfg.downsample_factor
        return self.ldm.latent.height * f, self.ldm.latent.width * f


def load_compose_models(folder: str | Path) -> ComposeModels:
    """Stages "image_ldm" and "autoencoder" of a model folder, in eval mode on the CPU."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    td = load_temporal_decoder(folder) if (folder / f"{TEMPORAL_DECODER_STAGE}.safetensors").is_file() else None
    models = ComposeModels(
        ldm=ImageLDM.from_folder(folder),
        autoencoder=load_autoencoder(folder),
        temporal_decoder=td,
        layout_prior=load_layout_prior(folder),
    )
    check_compatible(models)
    return models


def check_compatible(models: ComposeModels) -> None:
    """The LDM must model this autoencoder's latents: same channels and latent scale."""
    ae, latent = models.autoencoder, models.ldm.latent
    if ae.cfg.latent_channels != latent.channels:
        raise ValueError(
            f"image_ldm models {latent.channels}-channel latents, the autoencoder makes {ae.cfg.latent_channels}"
        )
    ae_scale = float(ae.latent_scale)
    if not math.isclose(ae_scale, latent.scale, rel_tol=1e-3):
        raise ValueError(
            f"image_ldm was trained with latent_scale={latent.scale:.6g}, the autoencoder has {ae_scale:.6g}: "
            "the two stages come from different autoencoders"
        )


def _class_index(value: Any, where: str) -> int:
    if isinstance(value, str):
        if value not in VEHICLE_CLASSES:
            raise ValueError(f"{where} class={value!r} is not allowed; expected one of {list(VEHICLE_CLASSES)}")
        return VEHICLE_CLASSES.index(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(VEHICLE_CLASSES):
        return int(value)
    raise ValueError(
        f"{where} class={value!r} is not allowed; expected one of {list(VEHICLE_CLASSES)} "
        f"or an index 0..{len(VEHICLE_CLASSES) - 1}"
    )


def _finite_in_unit(value: float | int) -> bool:
    try:
        v = float(value)
    except OverflowError:  # a Python int beyond float range
        return False
    return math.isfinite(v) and 0.0 <= v <= 1.0


def parse_boxes(entries: Any, max_boxes: int, name: str = "boxes") -> BoxLayout:
    """Validate user boxes: a list of [x1, y1, x2, y2] (+ optional class) or {box: [...], class: ...}.

    Each coordinate must be a finite number in [0, 1] with x1 < x2 and y1 < y2; at most
    `max_boxes` boxes. Errors name the entry, the bad value and what is allowed.
    """
    if isinstance(entries, np.ndarray):
        entries = entries.tolist()
    if isinstance(entries, Mapping) and "boxes" in entries:
        extra = sorted((k for k in entries if k != "boxes"), key=repr)
        if extra:
            raise ValueError(f"{name} mapping has keys {extra} besides 'boxes'; only 'boxes' is allowed")
        entries = entries["boxes"]
    if not isinstance(entries, (list, tuple)):
        raise ValueError(
            f"{name} must be a list of [x1, y1, x2, y2] (normalised, optional class), got {type(entries).__name__}"
        )
    if len(entries) > max_boxes:
        raise ValueError(f"{name} has {len(entries)} boxes; this model takes at most max_boxes={max_boxes}")
    xyxy = np.zeros((len(entries), 4), np.float32)
    classes = np.zeros(len(entries), np.int64)
    for i, entry in enumerate(entries):
        where = f"{name}[{i}]"
        cls: Any = 0
        if isinstance(entry, Mapping):
            unknown = sorted(set(entry) - {"box", "class"}, key=repr)
            if "box" not in entry or unknown:
                raise ValueError(f"{where}={entry!r}: a mapping needs 'box' (and optional 'class'), got keys {unknown}")
            coords, cls = entry["box"], entry.get("class", 0)
        elif isinstance(entry, (list, tuple)) and len(entry) in (4, 5):
            coords = entry[:4]
            cls = entry[4] if len(entry) == 5 else 0
        else:
            raise ValueError(f"{where}={entry!r} is not allowed; expected [x1, y1, x2, y2] or [x1, y1, x2, y2, class]")
        if not isinstance(coords, (list, tuple)) or len(coords) != 4:
            raise ValueError(f"{where} box={coords!r} must be 4 numbers [x1, y1, x2, y2]")
        for k, value in enumerate(coords):
            ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))
            if not ok or not _finite_in_unit(value):
                axis = ("x1", "y1", "x2", "y2")[k]
                raise ValueError(f"{where} {axis}={value!r} is not allowed; expected a finite number in [0, 1]")
        x1, y1, x2, y2 = (float(v) for v in coords)
        if not (x1 < x2 and y1 < y2):
            raise ValueError(f"{where}={[x1, y1, x2, y2]} is not allowed; need x1 < x2 and y1 < y2")
        xyxy[i] = (x1, y1, x2, y2)
        classes[i] = _class_index(cls, where)
    return BoxLayout(xyxy=xyxy, classes=classes)


def layout_entries(layout: BoxLayout) -> list[list[float | str]]:
    """The layout as a box file's entries, [x1, y1, x2, y2, class name] each (`load_box_file` reads them)."""
    return [
        [*(float(v) for v in box), VEHICLE_CLASSES[int(c)]] for box, c in zip(layout.xyxy, layout.classes)
    ]


def load_box_file(path: str | Path, max_boxes: int) -> BoxLayout:
    """Boxes from a JSON or YAML file (a list of boxes, or a mapping whose only key is `boxes`)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"boxes file {path} does not exist")
    kind = path.suffix.lstrip(".") or "YAML"
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"boxes file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"boxes file {path} is not valid {kind}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. a huge integer literal, nesting beyond the parser's depth
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ValueError(f"boxes file {path} is not valid {kind}: {reason}") from None
    return parse_boxes([] if data is None else data, max_boxes, name=f"{path}")


def _check_label(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and (not isinstance(value, str) or value not in allowed):
        raise ValueError(f"{name}={value!r} is not allowed; expected one of {list(allowed)} or None (unconditional)")
    return value


def sample_layout(
    models: ComposeModels | LayoutPrior,
    time_of_day: str | None,
    crowdedness: str | None,
    generator: torch.Generator | None = None,
) -> BoxLayout:
    """A layout drawn from the layout prior for the labels (None = any value of that label)."""
    tod = _check_label("time_of_day", time_of_day, TIME_OF_DAY)
    crowd = _check_label("crowdedness", crowdedness, CROWDEDNESS)
    prior = models if isinstance(models, LayoutPrior) else models.layout_prior
    if prior is None:
        raise ValueError(
            "this model folder has no layout_prior stage; fit one with "
            "`drivesim train stage=layout_prior latents=CACHE model_dir=FOLDER`, or give boxes (boxes=null: unknown)"
        )
    max_boxes = None if isinstance(models, LayoutPrior) else models.ldm.max_boxes
    xyxy, classes = prior.sample(
        -1 if tod is None else TIME_OF_DAY.index(tod),
        -1 if crowd is None else CROWDEDNESS.index(crowd),
        generator,
        max_boxes,
    )
    return BoxLayout(xyxy=xyxy, classes=classes)


def make_conditioning(
    layouts: Sequence[BoxLayout | None], time_of_day: Sequence[str | None], crowdedness: Sequence[str | None]
) -> Conditioning:
    """One row per requested scene; a None layout means boxes unknown, None labels are null."""
    for i, (t, c) in enumerate(zip(time_of_day, crowdedness)):
        _check_label(f"time_of_day[{i}]", t, TIME_OF_DAY)
        _check_label(f"crowdedness[{i}]", c, CROWDEDNESS)
    return Conditioning.from_labels(
        list(time_of_day),
        list(crowdedness),
        [None if lay is None else lay.xyxy for lay in layouts],
        [None if lay is None else lay.classes for lay in layouts],
    )


@torch.no_grad()
def decode_latents(models: ComposeModels, latents: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Scaled latents (b, C, h, w) -> (b, H, W, 3) uint8 frames with the temporal decoder when the
    models have one (each frame as a still 3-frame clip, the middle frame kept), else the image decoder."""
    ae, td = models.autoencoder, models.temporal_decoder
    device = next(ae.parameters()).device
    parts = []
    for i in range(0, latents.shape[0], batch_size):
        z = latents[i : i + batch_size].to(device) / models.ldm.latent.scale
        if td is None:
            x = ae.decode(z).clamp(-1.0, 1.0)  # (b, 3, H, W)
        else:
            still = repeat(z, "b c h w -> b t c h w", t=3)  # (b, 3, C, h, w)
            x = td.decode_video(still, scaled=False)[:, 1]  # (b, 3, H, W)
        parts.append(((x + 1.0) * 127.5).round().to(torch.uint8).cpu())
    return rearrange(torch.cat(parts), "b c h w -> b h w c").numpy()  # (b, H, W, 3)


def generate_latents(
    models: ComposeModels,
    cond: Conditioning,
    steps: int = 50,
    guidance: ImageGuidance | float | Mapping[str, float] | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> torch.Tensor:
    """(b, C, h, w) scaled latents for the b rows of `cond`, sampled `batch_size` at a time
    (`decode_latents` turns them into frames; the same latents can go through several decoders)."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    rows = []
    for i in range(0, cond.batch_size, batch_size):
        index = torch.arange(i, min(i + batch_size, cond.batch_size))
        part = Conditioning(
            time_of_day=cond.time_of_day[index],
            crowdedness=cond.crowdedness[index],
            boxes=cond.boxes[index],
            box_classes=cond.box_classes[index],
            box_mask=cond.box_mask[index],
            boxes_given=cond.boxes_given[index],
        )
        rows.append(sample_image(models.ldm, part, steps, guidance, generator, progress=progress))
    return torch.cat(rows)


def generate_frames(
    models: ComposeModels,
    cond: Conditioning,
    steps: int = 50,
    guidance: ImageGuidance | float | Mapping[str, float] | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray:
    """(b, H, W, 3) uint8 frames for the b rows of `cond`, sampled `batch_size` at a time."""
    latents = generate_latents(models, cond, steps, guidance, generator, batch_size, progress)
    return decode_latents(models, latents)


def overlay_boxes(frame: np.ndarray, layout: BoxLayout) -> np.ndarray:
    """A copy of an (H, W, 3) uint8 frame with the layout's boxes and class names drawn on it."""
    boxes = FrameBoxes(
        xyxy=layout.xyxy.astype(np.float32),
        classes=layout.classes.astype(np.int64),
        track_ids=np.full(len(layout), -1, np.int64),
    )
    return draw_frame_boxes(frame, boxes)


def compose_scene(
    models: str | Path | ComposeModels,
    boxes: BoxLayout | Sequence[BoxEntry] | None = None,
    time_of_day: str | None = "day",
    crowdedness: str | None = "medium",
    seed: int = 0,
    steps: int = 50,
    guidance: ImageGuidance | float | Mapping[str, float] | None = 3.0,
    draw_boxes: bool = False,
) -> np.ndarray:
    """The first frame of a scene: (H, W, 3) uint8 at the autoencoder's image size.

    models: a model folder with stages "image_ldm" and "autoencoder", or loaded `ComposeModels`.
    boxes: normalised [x1, y1, x2, y2(, class)] entries (validated), a `BoxLayout`, or None
        (boxes unknown). time_of_day / crowdedness: a label or None (unconditional).
    guidance: classifier-free guidance scale(s); 1 = plain conditional, > 1 = stronger adherence.
    draw_boxes: draw the requested boxes over the frame.
    """
    if not isinstance(models, ComposeModels):
        models = load_compose_models(models)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed={seed!r} is not allowed; expected an int in [0, 2**63)")
    num_steps = models.ldm.schedule.num_steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= num_steps:
        raise ValueError(f"steps={steps!r} is not allowed; expected an int in 1..{num_steps}")
    layout = boxes if isinstance(boxes, BoxLayout) or boxes is None else parse_boxes(boxes, models.ldm.max_boxes)
    if layout is not None and len(layout) > models.ldm.max_boxes:
        raise ValueError(f"boxes has {len(layout)} boxes; this model takes at most max_boxes={models.ldm.max_boxes}")
    cond = make_conditioning([layout], [time_of_day], [crowdedness])
    frame = generate_frames(models, cond, steps, guidance, torch.Generator().manual_seed(int(seed)))[0]
    if draw_boxes and layout is not None:
        frame = overlay_boxes(frame, layout)
    return frame


def request_layouts(
    requests: Sequence[SceneRequest], prior: LayoutPrior | None, gens: list[torch.Generator]
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """Boxes (n, 4) and classes (n,) per request: the request's own boxes, else (for a composed first
    frame, when a layout prior is given) a layout drawn from the prior for the request's labels with
    its generator, else None (boxes unknown)."""
    boxes: list[np.ndarray | None] = [r.boxes for r in requests]
    classes: list[np.ndarray | None] = [None] * len(requests)
    for i, r in enumerate(requests):
        if prior is not None and r.boxes is None and r.initial_frames is None:
            boxes[i], classes[i] = prior.sample(r.time_of_day, r.crowdedness, gens[i])
    return boxes, classes
