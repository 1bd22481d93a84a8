"""`EngineConfig.compile`: torch.compile the engine's three per-step networks (keyframe prediction,
interpolation, temporal decoder) in place, with static shapes.

The networks trace whole (their data-dependent input checks skip while tracing: `drivesim.nn.value_checks`).
Each new input shape (a batch size, a decode group, the first steps' shorter context) compiles anew, so the
first steps of a run take minutes (PyTorch's on-disk cache shortens later runs). Measured in docs/results.md
*torch.compile on whole networks*: in bfloat16 1.56x / 1.77x env frames/s at one env (DriveWorld-v0 / the
steer env), 1.2x at 32. In place: every engine over the same loaded `WorldModel` then runs the compiled
networks.
"""

from __future__ import annotations

from torch import nn


def compile_networks(prediction: nn.Module, interpolation: nn.Module | None, decoder: nn.Module | None) -> list[str]:
    """Compile each given network's forward in place (static shapes); the names of those compiled."""
    done = []
    for name, net in (("prediction", prediction), ("interpolation", interpolation), ("temporal_decoder", decoder)):
        if net is not None:
            net.compile(dynamic=False)
            done.append(name)
    return done
