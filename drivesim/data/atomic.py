"""Atomic file replacement: write to a temporary file next to the target, then
`os.replace` it over the target, so readers see either the old or the new file, never
a half-written one (an interrupted writer leaves at most a stray `.tmp` file)."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def temporary_sibling(target: Path, suffix: str = "") -> Path:
    """Create (empty, with the usual umask permissions) and return a unique hidden file
    next to `target`, named `.<name>.<pid>.<random>.tmp<suffix>`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}"
        try:
            with open(tmp, "xb"):
                return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces `target`.

    `suffix` is kept at the end of the temporary name (e.g. ".mp4") for writers that
    pick a format from the file extension. On an exception the temporary file is removed.
    The file gets the usual umask permissions even when the writer recreated it with others
    (safetensors writes 0600 files).
    """
    target = Path(target)
    tmp = temporary_sibling(target, suffix)
    mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        yield tmp
        if stat.S_IMODE(tmp.stat().st_mode) != mode:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically, flushed to disk before the rename."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def save_figure(fig: Any, target: str | Path, dpi: int = 90) -> Path:
    """Lay out a matplotlib figure tightly, write it to `target` atomically (its folder made; the format from the
    suffix) and close it. Returns the path."""
    import matplotlib.pyplot as plt

    path = Path(target)
    fig.tight_layout()
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path
