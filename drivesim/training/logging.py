"""Loss logs: an append-only JSONL of scalars per step and a PNG of the curves."""

from __future__ import annotations

import json
from pathlib import Path

from drivesim.data.atomic import atomic_write_text, save_figure


class LossLog:
    """Collects `{step, name: value}` rows; `save()` rewrites `losses.jsonl` atomically.

    On resume, rows already on disk with a step < the resumed step are kept, the rest
    dropped, so a curve has no duplicated segment.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / "losses.jsonl"
        self.rows: list[dict[str, float]] = []
        if resume_step is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    if row.get("step", 0) < resume_step:
                        self.rows.append(row)

    def log(self, step: int, **scalars: float) -> None:
        self.rows.append({"step": int(step), **{k: float(v) for k, v in scalars.items()}})

    def save(self) -> None:
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows))

    def plot(self, path: Path, title: str = "") -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = sorted({k for r in self.rows for k in r if k != "step"})
        fig, axes = plt.subplots(len(names) or 1, 1, figsize=(7, 2.2 * max(1, len(names))), squeeze=False)
        for ax, name in zip(axes[:, 0], names):
            pts = [(r["step"], r[name]) for r in self.rows if name in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)
