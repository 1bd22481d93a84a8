"""`EngineConfig.compile`: torch.compile the engine's three per-step networks (keyframe prediction,
interpolation, temporal decoder) in place, with static shapes.

Each new input shape (a batch size, a decode group, the first steps' shorter context) compiles anew, so
the first steps of a run take minutes; measured in docs/results.md *bfloat16 (session 23)*: ~1.2x env frames/s at
32 envs in bfloat16 after that, none with dynamic shapes. In place: every engine over the same loaded
`WorldModel` then runs the compiled networks.
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
