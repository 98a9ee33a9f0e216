"""Averages of weights: an exponential moving average during a run, and soups of runs (torch)."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of parameters, with a warm-up so early steps do not dominate."""

    def __init__(self, params: list[nn.Parameter], decay: float) -> None:
        self.params = params
        self.decay = decay
        self.steps = 0
        self.shadow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average."""
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_mul_(self.shadow, decay)
        torch._foreach_add_(self.shadow, [p.detach() for p in self.params], alpha=1 - decay)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange live and averaged weights (call twice to return)."""
        for p, s in zip(self.params, self.shadow):
            live = p.detach().clone()
            p.copy_(s)
            s.copy_(live)


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of state dicts of one architecture (a weight soup); integer buffers from the first."""
    averaged = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            averaged[key] = torch.stack([s[key].float() for s in states]).mean(dim=0).to(first.dtype)
        else:
            averaged[key] = first.clone()
    return averaged

