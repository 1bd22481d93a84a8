import pytest
import torch

from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig, broadcast_to_sample

KINDS = ["linear", "scaled_linear", "cosine"]


def _config(kind: str) -> ScheduleConfig:
    if kind == "linear":
        return ScheduleConfig(kind="linear", beta_start=1e-4, beta_end=2e-2)
    return ScheduleConfig(kind=kind)


@pytest.mark.parametrize("kind", KINDS)
def test_variance_preserving_and_monotonic(kind):
    s = NoiseSchedule(_config(kind))
    tau = torch.arange(s.num_steps)
    alpha, sigma = s.alpha(tau), s.sigma(tau)
    assert alpha.dtype == torch.float64
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(alpha), atol=1e-12, rtol=0)
    assert bool((alpha[1:] < alpha[:-1]).all())
    assert bool((sigma[1:] > sigma[:-1]).all())
    lam = s.log_snr(tau)
    assert bool((lam[1:] < lam[:-1]).all())
    assert alpha[0] > 0.99 and sigma[0] < 0.12
    assert alpha[-1] < 0.1 and sigma[-1] > 0.99


def test_endpoints_of_known_schedules():
    lin = NoiseSchedule(ScheduleConfig(kind="linear", beta_start=1e-4, beta_end=2e-2))
    assert lin.betas[0].item() == pytest.approx(1e-4)
    assert lin.betas[-1].item() == pytest.approx(2e-2)
    ldm = NoiseSchedule(ScheduleConfig())
    assert ldm.num_steps == 1000
    assert ldm.betas[0].item() == pytest.approx(0.00085)
    assert ldm.betas[-1].item() == pytest.approx(0.012)
    cos = NoiseSchedule(ScheduleConfig(kind="cosine"))
    assert cos.alpha(torch.tensor([999])).item() < 1e-3


def test_sample_tau_range_and_determinism():
    s = NoiseSchedule()
    t1 = s.sample_tau(5000, torch.Generator().manual_seed(0))
    t2 = s.sample_tau(5000, torch.Generator().manual_seed(0))
    assert torch.equal(t1, t2)
    assert t1.dtype == torch.long and int(t1.min()) == 0 and int(t1.max()) == 999


def test_add_noise_formula():
    s = NoiseSchedule()
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)
    tau = torch.tensor([0, 500, 999])
    z = s.add_noise(x0, eps, tau)
    for i in range(3):
        a, sg = s.alpha(tau[i : i + 1]).item(), s.sigma(tau[i : i + 1]).item()
        torch.testing.assert_close(z[i], a * x0[i] + sg * eps[i])


def test_bad_inputs_raise():
    s = NoiseSchedule()
    with pytest.raises(ValueError, match="tau"):
        s.alpha(torch.tensor([1000]))
    with pytest.raises(ValueError, match="tau"):
        s.alpha(torch.tensor([-1]))
    with pytest.raises(ValueError, match="integer"):
        s.alpha(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="kind"):
        ScheduleConfig(kind="quadratic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta_start"):
        ScheduleConfig(beta_start=0.1, beta_end=0.01)
    with pytest.raises(ValueError, match="match"):
        broadcast_to_sample(torch.ones(2), torch.ones(3, 4))
