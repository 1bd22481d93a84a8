"""Atomic writes: the target is replaced whole, with ordinary permissions, and an error leaves it alone."""

import os
import stat
from pathlib import Path

import pytest
import torch

from drivesim.data.atomic import atomic_path, atomic_write_text, save_figure
from drivesim.model_folder import atomic_save_tensors


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_tensors_get_the_permissions_of_an_ordinary_new_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    weights = tmp_path / "w.safetensors"
    atomic_save_tensors(weights, {"a": torch.ones(2)})  # safetensors itself writes 0600 files
    assert _mode(weights) == _mode(plain)


def test_a_writer_that_changes_the_mode_is_overruled(tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    reference.write_text("x")
    target = tmp_path / "t.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        os.chmod(tmp, 0o600)
    assert target.read_text() == "new" and _mode(target) == _mode(reference)


def test_an_error_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_save_figure_writes_the_png_whole_into_a_new_folder_and_closes_the_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "new" / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in path.parent.iterdir()) == ["curve.png"]  # no temporary file left

