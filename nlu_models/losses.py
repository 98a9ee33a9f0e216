"""Training losses: class-weighted cross-entropy (smoothing follows the class weight) and distillation."""

from __future__ import annotations

import torch
from torch import nn


class ClassWeightedCrossEntropy(nn.Module):
    """Cross-entropy with class weights and label smoothing, each example weighted by its own class.

    ``torch.nn.CrossEntropyLoss(weight=w, label_smoothing=e)`` weights the smoothing term of every
    example by the weights of the *other* classes. With strong imbalance (a 4 % class gets about 24
    times the weight of the rest) the smoothing mass that every majority example spreads onto the rare
    class then outweighs the example's own target, and the model learns to predict the rare class
    almost always. Here the whole smoothed loss of an example is scaled by the weight of its label, so
    weights rebalance how much each example counts and smoothing stays a mild regulariser. Without
    smoothing both losses are the same.

    Args:
        weight: One weight per class (``None``: all 1).
        label_smoothing: Share of the target spread evenly over all classes.
    """

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.weight: torch.Tensor | None
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Weighted mean loss over the batch (``logits``: batch × classes, ``targets``: class ids)."""
        if self.label_smoothing == 0.0:
            # The same loss; torch's kernel keeps unsmoothed training bit-for-bit as it was.
            return nn.functional.cross_entropy(logits, targets, weight=self.weight)
        log_probs = torch.log_softmax(logits, dim=-1)
        own = -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
        per_example = (1.0 - self.label_smoothing) * own - self.label_smoothing * log_probs.mean(dim=-1)
        if self.weight is None:
            return per_example.mean()
        weights = self.weight[targets]
        return (weights * per_example).sum() / weights.sum()


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean KL(teacher ‖ student) of temperature-softened predictions, times T² (Hinton et al. 2015).

    The T² factor keeps the gradient's size comparable to the hard-label loss whatever the
    temperature, so the two can be mixed with one weight.

    Args:
        student_logits: Batch × classes raw logits of the model being trained.
        teacher_probs: Batch × classes target distribution, already softened at ``temperature``.
        temperature: Softening of the student's logits (the teacher's used the same).
    """
    log_student = torch.log_softmax(student_logits / temperature, dim=-1)
    kl = (teacher_probs * (torch.log(teacher_probs.clamp(min=1e-12)) - log_student)).sum(dim=-1)
    return kl.mean() * temperature**2
