"""Whether data-dependent input checks run: eagerly yes, under `torch.compile` tracing no.

A check that reads tensor values (`bool(mask.all())`, `int(labels.max())`) cannot be traced: each one
breaks the compiled graph in two and makes the code around it a separate, recompiled frame
(`EngineConfig.compile`, docs/results.md *torch.compile on whole networks*). Shape and dtype checks need no values
and run always. The engine and the env check what callers give before any network sees it, and the
eager path (training, tests, every uncompiled call) keeps every check.
"""

from __future__ import annotations

import torch


def value_checks_on() -> bool:
    """True unless torch.compile is tracing the caller."""
    return not torch.compiler.is_compiling()
