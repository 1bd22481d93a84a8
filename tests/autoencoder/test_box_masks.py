"""Box masks and the box-weighted reconstruction loss of the temporal-decoder stage."""

import dataclasses

import numpy as np
import pytest
import torch

from drivesim.autoencoder.box_masks import box_mask, clip_box_masks, pixel_weights
from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.discriminator import DiscriminatorConfig
from drivesim.autoencoder.frame_bank import load_clip_frames
from drivesim.autoencoder.losses import reconstruction_loss
from drivesim.autoencoder.model import Autoencoder
from drivesim.data.annotations import ClipAnnotations, ClipBoxes
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.manifest import MANIFEST_NAME, write_manifest
from drivesim.model_folder import save_stage
from drivesim.training.temporal_decoder import TemporalDecoderTrainConfig, TemporalDecoderTrainer
from drivesim.training.temporal_decoder_data import sample_clips

TINY_AE = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
TINY_D = DiscriminatorConfig(base_channels=4, num_layers=2)


def test_box_mask_covers_the_box_grown_by_the_margin_and_clips_at_the_border():
    mask = box_mask(np.array([[0.25, 0.5, 0.5, 0.75], [0.9, 0.0, 1.0, 0.1]]), 16, 32, margin=1)
    assert mask.shape == (16, 32) and mask.dtype == bool
    assert mask[7:13, 7:17].all()  # rows 8..11, columns 8..15, one pixel more on every side
    assert not mask[6, 10] and not mask[13, 10] and not mask[10, 6] and not mask[10, 17]
    assert mask[0:3, 27:32].all() and not mask[3, 30]  # second box: clipped at the top and right
    assert box_mask(np.zeros((0, 4)), 16, 32).sum() == 0
    assert box_mask(np.array([[0.25, 0.5, 0.5, 0.75]]), 16, 32, margin=0).sum() == 4 * 8
    with pytest.raises(ValueError, match="margin"):
        box_mask(np.zeros((0, 4)), 16, 32, margin=-1)


def _boxes(num_frames: int, labelled: list[bool]) -> ClipBoxes:
    per_frame = [np.array([[0.25, 0.5, 0.5, 0.75]], np.float32)] * num_frames
    return ClipBoxes(
        offsets=np.arange(num_frames + 1, dtype=np.int64),
        xyxy=np.concatenate(per_frame),
        classes=np.zeros(num_frames, np.int64),
        track_ids=np.zeros(num_frames, np.int64),
        labelled=np.array(labelled),
    )


def test_clip_masks_are_empty_without_boxes_on_unlabelled_frames_and_past_the_annotation():
    assert clip_box_masks(None, 3, 16, 32).sum() == 0
    masks = clip_box_masks(_boxes(3, [True, False, True]), 4, 16, 32)
    assert masks.shape == (4, 16, 32)
    assert masks[0].any() and not masks[1].any() and masks[2].any() and not masks[3].any()


def test_pixel_weights_and_their_errors():
    masks = torch.zeros(2, 4, 8, dtype=torch.bool)
    masks[1, :2, :3] = True
    w = pixel_weights(masks, 5.0)
    assert w.shape == (2, 1, 4, 8)
    assert float(w[1, 0, 0, 0]) == 5.0 and float(w[1, 0, 3, 7]) == 1.0 and float(w[0].max()) == 1.0
    with pytest.raises(ValueError, match="box_weight"):
        pixel_weights(masks, 0.5)
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        pixel_weights(masks[0], 2.0)


def test_weighted_loss_counts_errors_inside_boxes_more_and_equals_plain_with_unit_weights():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 32)
    masks = torch.zeros(2, 16, 32, dtype=torch.bool)
    masks[:, 4:8, 4:12] = True
    inside, outside = x.clone(), x.clone()
    inside[:, :, 5:7, 6:10] += 0.5  # the same error, once in a box and once outside
    outside[:, :, 10:12, 20:24] += 0.5
    weight = pixel_weights(masks, 4.0)
    for g in (0.0, 0.5):
        plain_in, plain_out = reconstruction_loss(inside, x, g), reconstruction_loss(outside, x, g)
        assert float(plain_in) == pytest.approx(float(plain_out), rel=1e-5)
        assert float(reconstruction_loss(inside, x, g, weight)) > 1.5 * float(
            reconstruction_loss(outside, x, g, weight)
        )
        ones = torch.ones(2, 1, 16, 32)
        assert float(reconstruction_loss(inside, x, g, ones)) == pytest.approx(float(plain_in), rel=1e-6)
    with pytest.raises(ValueError, match=r"\(b, 1, H, W\)"):
        reconstruction_loss(inside, x, 0.5, torch.ones(2, 3, 16, 32))


def _frames(t: int = 8) -> list[np.ndarray]:
    return [np.full((16, 32, 3), 40 + 10 * i, np.uint8) for i in range(t)]


def test_frame_bank_loads_masks_and_sample_clips_flips_them_with_the_frames(tmp_path):
    labels = ClipLabels(id="c0", fps=30.0, time_of_day="day", crowdedness="low", split="train", source="test")
    boxes = ClipBoxes(
        offsets=np.arange(9, dtype=np.int64),
        xyxy=np.tile(np.array([[0.0, 0.0, 0.25, 0.5]], np.float32), (8, 1)),  # left quarter, top half
        classes=np.zeros(8, np.int64),
        track_ids=np.zeros(8, np.int64),
        labelled=np.ones(8, bool),
    )
    bare = ClipLabels(id="c1", fps=30.0, time_of_day="day", crowdedness="low", split="train", source="test")
    records = [
        write_clip(tmp_path, labels, _frames(), ClipAnnotations(8, boxes=boxes)),
        write_clip(tmp_path, bare, _frames()),
    ]
    write_manifest(tmp_path / MANIFEST_NAME, records)
    plain = load_clip_frames(tmp_path, "train", 16, 32)
    assert plain.masks is None
    with pytest.raises(ValueError, match="box_masks=True"):
        plain.clip_masks(0)
    bank = load_clip_frames(tmp_path, "train", 16, 32, box_masks=True)
    assert bank.masks is not None and bank.masks.shape == (16, 16, 32)
    assert bank.clip_masks(0)[:, :8, :8].all() and bank.clip_masks(0).sum() == 8 * 9 * 9  # grown by 1 px
    assert not bank.clip_masks(1).any()  # no annotations: nothing weighted
    flipped = 0
    for seed in range(8):
        batch = sample_clips(bank, 2, 4, torch.Generator().manual_seed(seed), hflip=True)
        assert batch.masks is not None and batch.masks.shape == (2, 4, 16, 32)
        for row in range(2):
            if batch.masks[row].any():
                flipped += int(batch.masks[row, 0, 0, -1])
                assert batch.masks[row, 0, 0, 0] != batch.masks[row, 0, 0, -1]
    assert flipped > 0
    assert sample_clips(plain, 2, 4, torch.Generator().manual_seed(0), hflip=True).masks is None


def _trainer(**kw) -> TemporalDecoderTrainer:
    torch.manual_seed(0)
    cfg = TemporalDecoderTrainConfig(
        temporal=TemporalDecoderConfig(temporal_levels=(0,)), discriminator=TINY_D, sample_posterior=False, **kw
    )
    return TemporalDecoderTrainer(cfg, Autoencoder(TINY_AE))


def test_trainer_step_weights_box_pixels_only_when_box_weight_is_above_one():
    video = torch.rand(1, 4, 3, 16, 32) * 2 - 1
    masks = torch.zeros(1, 4, 16, 32, dtype=torch.bool)
    masks[..., 2:6, 4:10] = True
    losses = {}
    for w in (1.0, 4.0):
        for m in (None, masks):
            trainer = _trainer(box_weight=w)
            losses[w, m is None] = trainer.step(video, 0, torch.Generator().manual_seed(0), m).rec
    assert losses[1.0, True] == losses[1.0, False] == losses[4.0, True]
    assert losses[4.0, False] != losses[4.0, True]
    with pytest.raises(ValueError, match="box_weight"):
        TemporalDecoderTrainConfig(box_weight=0.5)


def test_init_from_loads_another_runs_decoder_and_rejects_other_configs(tmp_path):
    source = _trainer()
    with torch.no_grad():
        for p in source.decoder.parameters():
            p.add_(0.01)
    config = {"autoencoder": dataclasses.asdict(TINY_AE), "temporal": dataclasses.asdict(source.cfg.temporal)}
    save_stage(tmp_path, "temporal_decoder", source.decoder, config)
    fresh = _trainer()
    fresh.load_decoder(tmp_path)
    for key, value in source.decoder.state_dict().items():
        assert torch.equal(fresh.decoder.state_dict()[key], value), key
        assert torch.equal(fresh.ema.module.state_dict()[key], value), key
    other = TemporalDecoderTrainer(
        TemporalDecoderTrainConfig(temporal=TemporalDecoderConfig(temporal_levels=(0, 1)), discriminator=TINY_D),
        Autoencoder(TINY_AE),
    )
    with pytest.raises(ValueError, match="temporal config"):
        other.load_decoder(tmp_path)
