"""Fit the layout prior on a latent cache (`drivesim train stage=layout_prior`).

Reads only the box annotations of the cache (never the latents): one labelled frame every
`frame_step` frames of every clip of `split`, its largest `max_boxes` boxes (the image LDM's
rule), with the clip's labels. Frames of clips without box annotations are skipped. Exported
as stage "layout_prior" of `model_dir`; its `extra` holds the mean box count per crowdedness
on the fitted split and on `val_split`, so a prior that does not match held-out frames shows.
`run_dir/layouts.png` draws the box-count histograms of both splits and a sampled layout per
crowdedness. The fit is one pass over the annotations (seconds), so there is nothing to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from tqdm import tqdm

from drivesim.autoencoder.latent_cache import frame_boxes, read_cache
from drivesim.data.atomic import save_figure
from drivesim.data.labels import SPLITS, crowdedness_index, time_of_day_index
from drivesim.diffusion.layout_prior import LAYOUT_PRIOR_STAGE, LayoutPrior
from drivesim.model_folder import save_stage
from drivesim.world.types import CROWDEDNESS


@dataclass
class LayoutPriorTrainConfig:
    latents: str = "runs/latents/world"  # latent cache folder (its box annotations are read)
    run_dir: str = "runs/layout_prior"  # layouts.png
    model_dir: str = "runs/models/default"
    split: str = "train"
    val_split: str = "val"  # split the exported check is measured on
    frame_step: int = 10  # one frame every frame_step frames of a clip
    max_boxes: int = 16  # the image LDM's box slots

    def __post_init__(self) -> None:
        for name in ("frame_step", "max_boxes"):
            if getattr(self, name) < 1:
                raise ValueError(f"LayoutPriorTrainConfig.{name}={getattr(self, name)} must be >= 1")
        for name in ("split", "val_split"):
            if getattr(self, name) not in SPLITS:
                value = getattr(self, name)
                raise ValueError(f"LayoutPriorTrainConfig.{name}={value!r}; expected one of {list(SPLITS)}")


def collect_layouts(root: str | Path, split: str, frame_step: int, max_boxes: int) -> LayoutPrior:
    """The layouts of a cache split's labelled frames (see the module docstring)."""
    root = Path(root)
    _, records = read_cache(root)
    xyxy, classes, counts, tods, crowds = [], [], [], [], []
    for record in tqdm([r for r in records if r.split == split], desc=f"layouts ({split})", leave=False):
        with safe_open(str(root / record.latents), framework="pt") as f:
            if "box_offsets" not in f.keys():
                continue
            names = ("box_offsets", "boxes", "box_classes", "box_track_ids", "boxes_labelled")
            tensors = {k: f.get_tensor(k) for k in names}
        for i in range(0, record.num_frames, frame_step):
            if not bool(tensors["boxes_labelled"][i]):
                continue
            boxes, box_classes, _ = frame_boxes(tensors, i, max_boxes)
            m = boxes.shape[0]
            padded, cls = torch.zeros(max_boxes, 4), torch.zeros(max_boxes, dtype=torch.long)
            padded[:m], cls[:m] = boxes.float(), box_classes.long()
            xyxy.append(padded)
            classes.append(cls)
            counts.append(m)
            tods.append(time_of_day_index(record.time_of_day))
            crowds.append(crowdedness_index(record.crowdedness))
    if not counts:
        raise ValueError(f"latent cache {root} has no labelled boxes in split {split!r}; cannot fit a layout prior")
    return LayoutPrior(
        xyxy=torch.stack(xyxy),
        classes=torch.stack(classes),
        counts=torch.tensor(counts),
        time_of_day=torch.tensor(tods),
        crowdedness=torch.tensor(crowds),
    )


def plot_layouts(priors: dict[str, LayoutPrior], path: Path, seed: int = 0) -> Path:
    """Top: box-count histograms per crowdedness, one line per split; bottom: one layout drawn
    from the first prior for each crowdedness (boxes on a 2:1 frame, y down)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    first = next(iter(priors.values()))
    fig = plt.figure(figsize=(10, 5.5))
    ax = fig.add_subplot(2, 1, 1)
    bins = np.arange(first.max_boxes + 2) - 0.5
    for (split, prior), style in zip(priors.items(), ("-", "--")):
        for c, name in enumerate(CROWDEDNESS):
            counts = prior.counts[prior.crowdedness == c].numpy()
            if counts.size:
                hist, _ = np.histogram(counts, bins=bins, density=True)
                ax.step(bins[:-1] + 0.5, hist, where="mid", ls=style, color=f"C{c}", label=f"{name} ({split})")
    ax.set_xlabel("boxes per layout")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7, ncol=2)
    gen = torch.Generator().manual_seed(seed)
    for c, name in enumerate(CROWDEDNESS):
        sub = fig.add_subplot(2, len(CROWDEDNESS), len(CROWDEDNESS) + c + 1)
        xyxy, classes = first.sample(-1, c, gen) if first.matching(-1, c).numel() else (np.zeros((0, 4)), [])
        for (x1, y1, x2, y2), k in zip(xyxy, classes):
            sub.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=f"C{int(k)}"))
        sub.set_xlim(0, 1)
        sub.set_ylim(1, 0)
        sub.set_aspect(0.5)
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title(f"{name}: {len(xyxy)} boxes", fontsize=9)
    return save_figure(fig, path)


def train(cfg: LayoutPriorTrainConfig) -> LayoutPrior:
    prior = collect_layouts(cfg.latents, cfg.split, cfg.frame_step, cfg.max_boxes)
    priors = {cfg.split: prior}
    try:
        priors[cfg.val_split] = collect_layouts(cfg.latents, cfg.val_split, cfg.frame_step, cfg.max_boxes)
    except ValueError:
        pass  # a cache without that split: nothing to compare against
    extra = {"layouts": len(prior), "mean_boxes": {split: p.mean_counts() for split, p in priors.items()}}
    plot = plot_layouts(priors, Path(cfg.run_dir) / "layouts.png")
    config = {
        "latents": str(cfg.latents),
        "split": cfg.split,
        "frame_step": cfg.frame_step,
        "max_boxes": cfg.max_boxes,
    }
    save_stage(Path(cfg.model_dir), LAYOUT_PRIOR_STAGE, prior.state_dict(), config=config, extra=extra)
    print(f"layout prior: {len(prior)} layouts -> {cfg.model_dir}; mean boxes {extra['mean_boxes']}; plot {plot}")
    return prior
