import pytest
import torch
from einops import rearrange

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.parameterization import output_from_x0
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig, broadcast_to_sample
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.sampling.ddim import ddim_sample, ddim_timesteps

SHAPE = (3, 4, 8, 16)


def _exact_denoiser(schedule, x_star, target):
    def denoiser(z, tau):
        a = broadcast_to_sample(schedule.alpha(tau), z)
        s = broadcast_to_sample(schedule.sigma(tau), z)
        return output_from_x0(x_star, z, a, s, target)

    return denoiser


@pytest.mark.parametrize("target", ["eps", "v"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_exact_denoiser_recovers_the_data_point(target, eta, steps):
    schedule = NoiseSchedule()
    x_star = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = ddim_sample(
        _exact_denoiser(schedule, x_star, target),
        SHAPE,
        schedule,
        steps=steps,
        eta=eta,
        generator=torch.Generator().manual_seed(1),
        target=target,
        dtype=torch.float64,
    )
    torch.testing.assert_close(out, x_star, atol=1e-8, rtol=1e-8)


def test_exact_denoiser_cosine_schedule():
    schedule = NoiseSchedule(ScheduleConfig(kind="cosine"))
    x_star = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = ddim_sample(
        _exact_denoiser(schedule, x_star, "v"),
        SHAPE,
        schedule,
        20,
        0.3,
        torch.Generator().manual_seed(3),
        target="v",
        dtype=torch.float64,
    )
    torch.testing.assert_close(out, x_star, atol=1e-8, rtol=1e-8)


def _toy(z, tau):
    return torch.tanh(z) * 0.5 + 0.001 * rearrange(tau.float(), "b -> b 1 1 1")


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_same_seed_same_sample_different_seed_different(eta):
    schedule = NoiseSchedule()
    a = ddim_sample(_toy, SHAPE, schedule, 10, eta, torch.Generator().manual_seed(7))
    b = ddim_sample(_toy, SHAPE, schedule, 10, eta, torch.Generator().manual_seed(7))
    c = ddim_sample(_toy, SHAPE, schedule, 10, eta, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_eta_zero_with_given_noise_ignores_generator_and_eta_uses_it():
    schedule = NoiseSchedule()
    x_t = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    a = ddim_sample(_toy, SHAPE, schedule, 10, 0.0, torch.Generator().manual_seed(1), x_T=x_t)
    b = ddim_sample(_toy, SHAPE, schedule, 10, 0.0, torch.Generator().manual_seed(2), x_T=x_t)
    assert torch.equal(a, b)
    c = ddim_sample(_toy, SHAPE, schedule, 10, 1.0, torch.Generator().manual_seed(1), x_T=x_t)
    d = ddim_sample(_toy, SHAPE, schedule, 10, 1.0, torch.Generator().manual_seed(2), x_T=x_t)
    assert not torch.allclose(c, d)


def test_given_eta_noise_replaces_the_generators_and_its_shape_is_checked():
    schedule = NoiseSchedule()
    x_t = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    steps = torch.randn((9, *SHAPE), generator=torch.Generator().manual_seed(3))
    a = ddim_sample(_toy, SHAPE, schedule, 10, 1.0, torch.Generator().manual_seed(1), x_T=x_t, eta_noise=steps)
    b = ddim_sample(_toy, SHAPE, schedule, 10, 1.0, torch.Generator().manual_seed(2), x_T=x_t, eta_noise=steps)
    c = ddim_sample(_toy, SHAPE, schedule, 10, 1.0, torch.Generator().manual_seed(2), x_T=x_t, eta_noise=-steps)
    assert torch.equal(a, b)  # the generator no longer draws
    assert not torch.allclose(a, c)  # the given noise is what is added
    with pytest.raises(ValueError, match=r"eta_noise has shape .* expected \(9,"):
        ddim_sample(_toy, SHAPE, schedule, 10, 1.0, torch.Generator(), x_T=x_t, eta_noise=steps[:8])


def test_timesteps():
    t = ddim_timesteps(1000, 50)
    assert t.shape == (50,) and t[0] == 999 and t[-1] == 0
    assert bool((t[1:] < t[:-1]).all())
    assert torch.equal(ddim_timesteps(1000, 1000), torch.arange(999, -1, -1))
    assert ddim_timesteps(1000, 1).tolist() == [999]
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(1000, 0)
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(1000, 1001)


def test_trailing_timesteps_end_one_jump_above_zero():
    assert ddim_timesteps(1000, 2, "trailing").tolist() == [999, 499]
    assert ddim_timesteps(1000, 4, "trailing").tolist() == [999, 749, 499, 249]
    assert ddim_timesteps(1000, 2).tolist() == [999, 0]
    assert ddim_timesteps(1000, 1, "trailing").tolist() == [999]
    with pytest.raises(ValueError, match="spacing='even'; allowed"):
        ddim_timesteps(1000, 4, "even")


@pytest.mark.parametrize("target", ["eps", "v"])
def test_two_trailing_steps_leave_the_mean_and_two_linspace_steps_do_not(target):
    """Data: N(+-1, 0.2^2) with equal weight; the exact denoiser is the posterior mean. From pure
    noise it predicts ~0 (the blurry mean of the data); linspace's second step, at tau = 0, keeps
    that, while trailing's, at tau = 499, moves the samples well towards the modes."""
    schedule = NoiseSchedule()
    w2 = 0.2**2

    def mean_denoiser(z, tau):
        a = broadcast_to_sample(schedule.alpha(tau), z)
        s = broadcast_to_sample(schedule.sigma(tau), z)
        var = a**2 * w2 + s**2  # of z given the component
        logit = 2 * a * z / var  # log p(+1 | z) - log p(-1 | z)
        means = [(a * w2 * z + s**2 * mu) / var for mu in (1.0, -1.0)]  # E[x | z, component]
        p = torch.sigmoid(logit)
        return output_from_x0(p * means[0] + (1 - p) * means[1], z, a, s, target)

    def run(spacing):
        out = ddim_sample(mean_denoiser, (4096,), schedule, 2, 0.0, torch.Generator().manual_seed(0), target=target,
                          dtype=torch.float64, spacing=spacing)  # fmt: skip
        return float(out.abs().mean())

    blurry, sharp = run("linspace"), run("trailing")
    assert blurry < 0.1 and sharp > 0.3, (blurry, sharp)
    exact = ddim_sample(_exact_denoiser(schedule, torch.ones(SHAPE, dtype=torch.float64), target), SHAPE, schedule,
                        3, 0.0, torch.Generator().manual_seed(1), target=target, dtype=torch.float64,
                        spacing="trailing")  # fmt: skip
    torch.testing.assert_close(exact, torch.ones(SHAPE, dtype=torch.float64))


def test_bad_arguments_raise():
    schedule = NoiseSchedule()
    g = torch.Generator()
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(_toy, SHAPE, schedule, 5, -0.1, g)
    with pytest.raises(ValueError, match="target"):
        ddim_sample(_toy, SHAPE, schedule, 5, 0.0, g, target="x0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x_T"):
        ddim_sample(_toy, SHAPE, schedule, 5, 0.0, g, x_T=torch.zeros(1, 4, 8, 16))


def test_ddim_with_tiny_unet():
    torch.manual_seed(0)
    net = SpatialUNet(UNetConfig.tiny()).eval()
    cond = Conditioning.null(2)
    out = ddim_sample(
        lambda z, tau: net(z, tau, cond),
        (2, 4, 8, 16),
        NoiseSchedule(),
        3,
        0.0,
        torch.Generator().manual_seed(0),
        target="v",
    )
    assert out.shape == (2, 4, 8, 16) and bool(torch.isfinite(out).all())


def test_skipping_steps_starts_at_the_kept_time_from_the_noised_guess():
    """skip=k runs only the times after the first k, from start_latents at the k-th time; a denoiser
    that returns its input's own clean part shows the start was alpha * guess + sigma * noise."""
    from drivesim.sampling.ddim import start_latents

    schedule = NoiseSchedule()
    guess = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    seen = []

    def denoiser(z, tau):
        seen.append(int(tau[0]))
        return output_from_x0(guess, z, broadcast_to_sample(schedule.alpha(tau), z),
                              broadcast_to_sample(schedule.sigma(tau), z), "eps")

    taus = ddim_timesteps(schedule.num_steps, 4, "trailing").tolist()
    start = start_latents(guess, noise, schedule, 4, 2, "trailing")
    alpha, sigma = schedule.alpha(torch.tensor([taus[2]])), schedule.sigma(torch.tensor([taus[2]]))
    torch.testing.assert_close(start, alpha.double() * guess + sigma.double() * noise)
    out = ddim_sample(denoiser, SHAPE, schedule, 4, 0.0, torch.Generator(), x_T=start, dtype=torch.float64,
                      spacing="trailing", skip=2)
    assert seen == taus[2:]  # two of four times run
    torch.testing.assert_close(out, guess)
    with pytest.raises(ValueError, match="skip > 0 needs x_T"):
        ddim_sample(denoiser, SHAPE, schedule, 4, 0.0, torch.Generator(), skip=1)
    with pytest.raises(ValueError, match="skip=4 is not allowed; expected 0..steps-1=3"):
        ddim_sample(denoiser, SHAPE, schedule, 4, 0.0, torch.Generator(), x_T=start, skip=4)
