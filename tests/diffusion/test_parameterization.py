import pytest
import torch

from drivesim.diffusion import parameterization as P
from drivesim.diffusion.schedule import NoiseSchedule, broadcast_to_sample


def _setup(seed: int = 0):
    s = NoiseSchedule()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 4, 3, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 4, 3, 5, generator=g, dtype=torch.float64)
    tau = torch.tensor([0, 1, 250, 500, 998, 999])
    a = broadcast_to_sample(s.alpha(tau), x)
    sg = broadcast_to_sample(s.sigma(tau), x)
    return x, eps, a * x + sg * eps, a, sg


def test_conversions_are_exact_inverses():
    x, eps, z, a, s = _setup()
    v = P.v_from_x_eps(x, eps, a, s)
    tol = dict(atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(P.x_from_z_eps(z, eps, a, s), x, **tol)
    torch.testing.assert_close(P.eps_from_z_x(z, x, a, s), eps, **tol)
    torch.testing.assert_close(P.x_from_z_v(z, v, a, s), x, **tol)
    torch.testing.assert_close(P.eps_from_z_v(z, v, a, s), eps, **tol)
    torch.testing.assert_close(P.v_from_z_x(z, x, a, s), v, **tol)
    torch.testing.assert_close(P.v_from_z_eps(z, eps, a, s), v, **tol)
    # round trips through each parameterisation
    torch.testing.assert_close(P.v_from_z_eps(z, P.eps_from_z_v(z, v, a, s), a, s), v, **tol)
    torch.testing.assert_close(P.eps_from_z_x(z, P.x_from_z_eps(z, eps, a, s), a, s), eps, **tol)


@pytest.mark.parametrize("target", ["eps", "v"])
def test_output_and_denoised_round_trip(target):
    x, eps, z, a, s = _setup(1)
    out = P.output_from_x0(x, z, a, s, target)
    d = P.denoised_from_output(out, z, a, s, target)
    torch.testing.assert_close(d.x0, x, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(d.eps, eps, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("target", ["eps", "v"])
def test_loss_of_exact_denoiser_is_zero(target):
    s = NoiseSchedule()
    x0 = torch.randn(5, 4, 4, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def exact(z, tau, cond):
        a, sg = broadcast_to_sample(s.alpha(tau), z), broadcast_to_sample(s.sigma(tau), z)
        return P.output_from_x0(x0, z, a, sg, target)

    out = P.diffusion_loss(exact, x0, None, s, torch.Generator().manual_seed(3), target=target)
    assert isinstance(out, P.DiffusionLoss)
    assert out.per_sample.shape == (5,) and out.tau.shape == (5,)
    assert out.loss.item() < 1e-16


def test_loss_deterministic_and_matches_manual():
    s = NoiseSchedule()
    x0 = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(4))
    seen = {}

    def zero(z, tau, cond):
        seen["z"], seen["tau"], seen["cond"] = z, tau, cond
        return torch.zeros_like(z)

    l1 = P.diffusion_loss(zero, x0, "c", s, torch.Generator().manual_seed(5), target="eps")
    assert seen["cond"] == "c"
    a, sg = (
        broadcast_to_sample(s.alpha(seen["tau"]).float(), x0),
        broadcast_to_sample(s.sigma(seen["tau"]).float(), x0),
    )
    eps = (seen["z"] - a * x0) / sg
    torch.testing.assert_close(l1.per_sample, (eps**2).mean(dim=(1, 2, 3)), atol=1e-4, rtol=1e-4)
    l2 = P.diffusion_loss(zero, x0, "c", s, torch.Generator().manual_seed(5), target="eps")
    assert torch.equal(l1.loss, l2.loss) and torch.equal(l1.tau, l2.tau)
    l3 = P.diffusion_loss(zero, x0, "c", s, torch.Generator().manual_seed(6), target="eps")
    assert not torch.equal(l1.loss, l3.loss)
    # weights: only channel 0 counts
    w = torch.zeros(1, 2, 1, 1)
    w[:, 0] = 1.0
    lw = P.diffusion_loss(zero, x0, "c", s, torch.Generator().manual_seed(5), target="eps", weight=w)
    torch.testing.assert_close(lw.per_sample, (eps[:, 0] ** 2).mean(dim=(1, 2)), atol=1e-4, rtol=1e-4)


def test_bad_target_and_tau_raise():
    s = NoiseSchedule()
    x0 = torch.zeros(2, 1, 2, 2)
    with pytest.raises(ValueError, match="target"):
        P.diffusion_loss(lambda z, t, c: z, x0, None, s, torch.Generator(), target="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau"):
        P.diffusion_loss(
            lambda z, t, c: z, x0, None, s, torch.Generator(), tau=torch.zeros(3, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="output shape"):
        P.diffusion_loss(lambda z, t, c: z[:1], x0, None, s, torch.Generator())
