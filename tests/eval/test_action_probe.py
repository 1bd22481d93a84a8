"""An action probe (stage action_probe) reads the actions; the clip probe keeps FVD-probe and labels."""

import copy

import pytest
import torch

from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.probe_io import Probes, load_probes, save_probes
from drivesim.eval.suite import evaluate
from tests.eval.test_eval_suite import OPTIONS, _set


def _shifted(probes: Probes) -> ClipProbe:
    """The clip probe with its per-pair action readings shifted by [+0.5, -0.5]."""
    action = copy.deepcopy(probes.clip)
    with torch.no_grad():
        action.pair_actions.bias += torch.tensor([0.5, -0.5])
    return action


def test_suite_reads_actions_with_the_action_probe_and_features_with_the_clip_probe(tiny_probes, make_clips):
    real, gen = _set(make_clips(4, 12, seed=0), "r"), _set(make_clips(4, 12, seed=1), "g")
    plain = evaluate(real, gen, tiny_probes, OPTIONS)
    tuned = Probes(frame=tiny_probes.frame, clip=tiny_probes.clip, action=_shifted(tiny_probes))
    with_action = evaluate(real, gen, tuned, OPTIONS)
    assert with_action.frechet.fvd_probe == pytest.approx(plain.frechet.fvd_probe)
    assert with_action.condition == plain.condition
    # a constant shift leaves Pearson r and moves the mean error of the readings
    assert with_action.action.accel.pearson == pytest.approx(plain.action.accel.pearson, abs=1e-6)
    assert with_action.action.accel.mae != pytest.approx(plain.action.accel.mae)


def test_action_probe_saved_loaded_and_refused_when_it_reads_other_windows(tiny_probes, tmp_path):
    tuned = Probes(frame=tiny_probes.frame, clip=tiny_probes.clip, action=_shifted(tiny_probes))
    loaded = load_probes(save_probes(tmp_path / "p", tuned))
    assert loaded.action is not None and loaded.action_reader is loaded.action
    for a, b in zip(tuned.action.state_dict().values(), loaded.action.state_dict().values()):
        assert torch.equal(a, b)
    other = ClipProbe(
        ClipProbeConfig(height=32, width=64, num_frames=6, frame_stride=1, widths=[8, 8, 16, 16], fps=10.0)
    )
    with pytest.raises(ValueError, match="num_frames"):
        Probes(frame=tiny_probes.frame, clip=tiny_probes.clip, action=other)
