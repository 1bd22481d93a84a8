import dataclasses

import pytest
import torch

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.parameterization import denoised_from_output
from drivesim.diffusion.schedule import NoiseSchedule, broadcast_to_sample
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_unet import VideoUNet, VideoUNetConfig
from drivesim.sampling.guidance import classifier_free_guidance
from drivesim.sampling.interpolation import interpolate
from drivesim.sampling.video import (
    VideoGuidance,
    VideoSamplingConfig,
    keep_known_frames,
    rollout_clips,
    sample_clip,
)

SCHEDULE = NoiseSchedule()
C, H, W = 4, 8, 16

pytestmark = pytest.mark.usefixtures("one_thread")



def _model(**overrides) -> VideoUNet:
    torch.manual_seed(0)
    model = VideoUNet(SpatialUNet(dataclasses.replace(UNetConfig.tiny(), zero_init=False)),
                      VideoUNetConfig.tiny(**overrides))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if not name.startswith("image_unet.") and not name.endswith(".raw"):
            torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def _context(b: int = 2, t: int = 4, s: int = 2):
    z = torch.randn(b, t, C, H, W, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(b, t)
    mask[:, :s] = 1.0
    return z, mask


@torch.no_grad()
def test_context_guidance_with_scale_one_is_the_conditional_prediction():
    model = _model()
    z, mask = _context()
    cond = VideoConditioning.create(2, 4, (C, H, W), context_latents=z * mask[..., None, None, None], context_mask=mask)
    x, tau = torch.randn_like(z), torch.tensor([100, 600])
    conditional = model(x, tau, cond)
    guided = classifier_free_guidance(model, cond, VideoGuidance(context=1.0 + 1e-9).scales())
    torch.testing.assert_close(guided(x, tau), conditional, rtol=1e-5, atol=1e-5)
    unconditional = model(x, tau, cond.nulled(["context"]))
    two = classifier_free_guidance(model, cond, VideoGuidance(context=2.0).scales())(x, tau)
    torch.testing.assert_close(two, unconditional + 2.0 * (conditional - unconditional), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="context"):
        VideoGuidance(context=0.5)


@torch.no_grad()
def test_sample_clip_keeps_context_and_is_deterministic():
    model = _model()
    z, mask = _context()
    cfg = VideoSamplingConfig(steps=3, guidance=VideoGuidance(context=1.5))
    a = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), config=cfg)
    b = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), config=cfg)
    assert a.latents.shape == z.shape and torch.equal(a.latents, b.latents)
    assert torch.equal(a.latents[:, :2], z[:, :2]) and torch.equal(a.known, mask)
    assert bool(torch.isfinite(a.latents).all())
    c = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(1), config=cfg)
    assert not torch.allclose(c.latents[:, 2:], a.latents[:, 2:])
    plain = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0),
                        config=VideoSamplingConfig(steps=3))
    assert not torch.allclose(plain.latents[:, 2:], a.latents[:, 2:], atol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("target", ["eps", "v"])
def test_known_frames_are_denoised_to_the_given_latents(target):
    known = torch.randn(1, 3, C, H, W)
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    denoiser = keep_known_frames(lambda z, tau: torch.zeros_like(z), known, mask, SCHEDULE, target)
    z, tau = torch.randn(1, 3, C, H, W), torch.tensor([400])
    out = denoiser(z, tau)
    alpha = broadcast_to_sample(SCHEDULE.alpha(tau).float(), z)
    sigma = broadcast_to_sample(SCHEDULE.sigma(tau).float(), z)
    x0 = denoised_from_output(out, z, alpha, sigma, target).x0
    torch.testing.assert_close(x0[:, [0, 2]], known[:, [0, 2]], rtol=1e-4, atol=1e-4)
    assert float(out[:, 1].abs().max()) == 0.0


@torch.no_grad()
def test_actions_change_the_sample_and_action_guidance_runs():
    model = _model()
    z, mask = _context(s=1)
    cfg = VideoSamplingConfig(steps=3, guidance=VideoGuidance(context=2.0, actions=3.0))
    left = torch.zeros(2, 4, 2)
    left[..., 0] = -1.0
    samples = [
        sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), actions=a, config=cfg)
        for a in (left, -left)
    ]
    assert not torch.allclose(samples[0].latents[:, 1:], samples[1].latents[:, 1:], atol=1e-4)


@torch.no_grad()
def test_context_noise_level_at_sampling():
    model = _model(context_noise=True)
    z, mask = _context()
    runs = [
        sample_clip(model, SCHEDULE, "v", z, mask, torch.Generator().manual_seed(0),
                    config=VideoSamplingConfig(steps=2, context_noise_level=level))
        for level in (0, 50)
    ]
    assert torch.equal(runs[1].latents[:, :2], z[:, :2])
    assert not torch.allclose(runs[0].latents[:, 2:], runs[1].latents[:, 2:], atol=1e-5)


@torch.no_grad()
def test_rollout_yields_new_frames_from_the_newest_context():
    model = _model()
    first = torch.randn(1, 1, C, H, W)
    clips = list(rollout_clips(model, SCHEDULE, "eps", first, num_frames=4, num_clips=3,
                               generator=torch.Generator().manual_seed(0), num_context=2,
                               config=VideoSamplingConfig(steps=2)))
    assert [c.index for c in clips] == [0, 1, 2]
    assert [tuple(c.new_frames.shape) for c in clips] == [(1, 3, C, H, W), (1, 2, C, H, W), (1, 2, C, H, W)]
    with pytest.raises(ValueError, match="num_context"):
        next(rollout_clips(model, SCHEDULE, "eps", first, 4, 1, torch.Generator(), num_context=4))


@torch.no_grad()
def test_explicit_noise_makes_clips_independent_of_their_batch():
    model = _model(context_noise=True)
    z, mask = _context()
    g = torch.Generator().manual_seed(9)
    x_T, eps = torch.randn(z.shape, generator=g), torch.randn(z.shape, generator=g)
    cfg = VideoSamplingConfig(steps=2, context_noise_level=30, guidance=VideoGuidance(context=1.5))
    both = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), config=cfg,
                       x_T=x_T, context_noise=eps)
    alone = sample_clip(model, SCHEDULE, "eps", z[1:], mask[1:], torch.Generator().manual_seed(5), config=cfg,
                        x_T=x_T[1:], context_noise=eps[1:])
    torch.testing.assert_close(alone.latents, both.latents[1:], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="x_T"):
        sample_clip(model, SCHEDULE, "eps", z, mask, g, config=cfg, x_T=x_T[:1])
    interp = _model(num_frame_rates=2, use_actions=False)
    keys = torch.randn(2, 4, C, H, W, generator=g)
    noise = torch.randn(2, 13, C, H, W, generator=g)
    cfg = VideoSamplingConfig(steps=2)
    both = interpolate(interp, SCHEDULE, "v", keys, torch.Generator().manual_seed(0), 1, config=cfg, x_T=noise)
    alone = interpolate(interp, SCHEDULE, "v", keys[:1], torch.Generator().manual_seed(3), 1, config=cfg,
                        x_T=noise[:1])
    torch.testing.assert_close(alone.latents, both.latents[:1], rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_spacing_reaches_the_sampler_and_is_checked():
    model = _model()
    z, mask = _context(b=1)

    def run(spacing):
        cfg = VideoSamplingConfig(steps=2, spacing=spacing)
        return sample_clip(model, SCHEDULE, "v", z, mask, torch.Generator().manual_seed(0), config=cfg).latents

    assert not torch.allclose(run("linspace"), run("trailing"))
    with pytest.raises(ValueError, match="spacing='uniform'; allowed"):
        VideoSamplingConfig(spacing="uniform")


@torch.no_grad()
def test_context_interval_guides_only_the_noisy_steps_and_saves_their_evaluations():
    model = _model()
    z, mask = _context()
    batches = []

    def counting(x, tau, cond):
        batches.append(x.shape[0])
        return model(x, tau, cond)

    def run(interval, scale=2.0):
        batches.clear()
        guidance = VideoGuidance(context=scale, context_interval=interval)
        cfg = VideoSamplingConfig(steps=2, spacing="trailing", guidance=guidance)  # tau 999, then 499
        return sample_clip(counting, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), config=cfg).latents

    first = run((0.5, 1.0))
    assert batches == [4, 2]  # guided (batched with the context nulled) at tau 999, conditional only at 499
    full = run((0.0, 1.0))
    assert batches == [4, 4]
    plain = run((0.0, 1.0), scale=1.0)
    assert batches == [2, 2]
    assert not torch.allclose(first[:, 2:], full[:, 2:], atol=1e-5)
    assert not torch.allclose(first[:, 2:], plain[:, 2:], atol=1e-5)
    assert VideoGuidance(context=2.0, context_interval=[0.5, 1]).intervals({"context": 2.0}, 1000) == {
        "context": (500, 999)
    }
    assert VideoGuidance(context=2.0).intervals({"context": 2.0}, 1000) == {}  # every step: no interval


@torch.no_grad()
def test_crowdedness_guidance_with_contrast_guides_against_the_sparser_label():
    """The crowdedness term of the keyframe sampler: with contrast, one more evaluation per step, whose label is
    the next sparser one; scale 1 is the plain conditional whatever the contrast."""
    model = _model()
    z, mask = _context()
    image = Conditioning.from_labels(["day", "night"], ["high", "medium"], [None, None], [None, None])
    seen = []

    def recording(x, tau, cond):
        seen.append(cond.image.crowdedness.tolist())
        return model(x, tau, cond)

    def run(scale, contrast=()):
        seen.clear()
        guidance = VideoGuidance(context=2.0, crowdedness=scale, contrast=contrast)
        cfg = VideoSamplingConfig(steps=1, spacing="trailing", guidance=guidance)
        return sample_clip(recording, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), image_cond=image,
                           config=cfg).latents  # fmt: skip

    plain = run(3.0)
    assert seen == [[-1, -1, -1, -1, 2, 1]]  # nothing; context; context and crowdedness (high 2, medium 1)
    contrasted = run(3.0, ("crowdedness",))
    assert seen == [[-1, -1, -1, -1, 2, 1, 1, 0]]  # ... and the sparser label (high against medium, medium low)
    assert not torch.allclose(plain[:, 2:], contrasted[:, 2:], atol=1e-5)
    torch.testing.assert_close(run(1.0, ("crowdedness",)), run(1.0))
    with pytest.raises(ValueError, match=r"contrast=\['boxes'\].*allowed"):
        VideoGuidance(contrast=("boxes",))


@torch.no_grad()
def test_crowdedness_interval_guides_only_its_steps_and_alone_saves_the_others_evaluations():
    model = _model()
    z, mask = _context()
    image = Conditioning.from_labels(["day", "night"], ["high", "medium"], [None, None], [None, None])
    batches = []

    def counting(x, tau, cond):
        batches.append(x.shape[0])
        return model(x, tau, cond)

    def run(**kw):
        batches.clear()
        cfg = VideoSamplingConfig(steps=2, spacing="trailing", guidance=VideoGuidance(**kw))  # tau 999, then 499
        return sample_clip(counting, SCHEDULE, "eps", z, mask, torch.Generator().manual_seed(0), image_cond=image,
                           config=cfg).latents  # fmt: skip

    noisy = run(crowdedness=3.0, contrast=("crowdedness",), crowdedness_interval=(0.5, 1.0))
    assert batches == [6, 2]  # nothing, crowdedness, its contrast at tau 999; the conditional alone at 499
    every = run(crowdedness=3.0, contrast=("crowdedness",))
    assert batches == [6, 6]
    plain = run()
    assert batches == [2, 2]
    assert not torch.allclose(noisy[:, 2:], every[:, 2:], atol=1e-5)
    assert not torch.allclose(noisy[:, 2:], plain[:, 2:], atol=1e-5)
    run(context=2.0, crowdedness=3.0, crowdedness_interval=(0.5, 1.0))
    assert batches == [6, 6]  # the context is guided at every step: every evaluation runs, crowdedness at scale 1
    guidance = VideoGuidance(context=2.0, crowdedness=3.0, crowdedness_interval=[0.5, 1])
    assert guidance.intervals(guidance.scales(), 1000) == {"crowdedness": (500, 999)}
    with pytest.raises(ValueError, match=r"crowdedness_interval=.*0 <= lo < hi <= 1"):
        VideoGuidance(crowdedness_interval=(0.5, 0.2))


@pytest.mark.parametrize("interval", [(0.6, 0.4), (-0.1, 1.0), (0.0, 1.5), (0.3,)])
def test_bad_context_interval_names_what_is_allowed(interval):
    with pytest.raises(ValueError, match=r"context_interval=.*0 <= lo < hi <= 1"):
        VideoGuidance(context=1.5, context_interval=interval)


@torch.no_grad()
def test_skipped_steps_start_from_the_guess_and_need_one():
    """With skip, new frames start from init noised to the kept time: the further the guess, the
    further the sample; without a guess it is an error."""
    model = _model()
    z, mask = _context()
    cfg = VideoSamplingConfig(steps=4, skip=2, spacing="trailing")
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    near = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator(), config=cfg, x_T=noise, init=z)
    far = sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator(), config=cfg, x_T=noise, init=z + 3.0)
    assert torch.equal(near.latents[:, :2], z[:, :2])  # context kept
    gap_near = float((near.latents[:, 2:] - z[:, 2:]).abs().mean())
    gap_far = float((far.latents[:, 2:] - z[:, 2:]).abs().mean())
    assert gap_far > gap_near + 0.5
    with pytest.raises(ValueError, match="skip=2 needs init"):
        sample_clip(model, SCHEDULE, "eps", z, mask, torch.Generator(), config=cfg)
    with pytest.raises(ValueError, match="VideoSamplingConfig.skip=4 must be in 0..steps-1=3"):
        VideoSamplingConfig(steps=4, skip=4)
