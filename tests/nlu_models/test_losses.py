"""Class-weighted cross-entropy with label smoothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nlu_models.losses import ClassWeightedCrossEntropy

# 96 majority examples, 4 of a rare class, inverse-frequency weights (mean 1) as the trainer uses.
TARGETS = torch.tensor([0] * 96 + [1] * 4)
WEIGHTS = torch.tensor([100 / (2 * 96), 100 / (2 * 4)])
WEIGHTS = WEIGHTS / WEIGHTS.mean()


def constant_logits(rare_probability: float) -> torch.Tensor:
    """Every example predicted with the same probability of the rare class."""
    p = torch.tensor([1 - rare_probability, rare_probability])
    return p.log().repeat(len(TARGETS), 1)


def best_constant_prediction(loss: nn.Module) -> float:
    """The rare-class probability that minimises the loss when every example gets the same output."""
    grid = [i / 100 for i in range(1, 100)]
    return min(grid, key=lambda p: float(loss(constant_logits(p), TARGETS)))


def test_without_smoothing_it_equals_torch_weighted_cross_entropy() -> None:
    logits = torch.randn(len(TARGETS), 2, generator=torch.Generator().manual_seed(0))
    ours = ClassWeightedCrossEntropy(WEIGHTS)(logits, TARGETS)
    theirs = nn.CrossEntropyLoss(weight=WEIGHTS)(logits, TARGETS)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_smoothing_does_not_push_majority_examples_to_the_rare_class() -> None:
    # Torch's weighted smoothing spreads each majority example's smoothing mass with the rare class's
    # large weight: its best constant output leans to the rare class. Ours stays balanced, as the
    # class weights alone (no smoothing) would have it.
    torch_best = best_constant_prediction(nn.CrossEntropyLoss(weight=WEIGHTS, label_smoothing=0.1))
    ours_best = best_constant_prediction(ClassWeightedCrossEntropy(WEIGHTS, label_smoothing=0.1))
    unsmoothed_best = best_constant_prediction(ClassWeightedCrossEntropy(WEIGHTS))
    assert torch_best > 0.6
    assert abs(ours_best - 0.5) <= 0.05
    assert abs(unsmoothed_best - 0.5) <= 0.01


def test_smoothing_without_weights_matches_torch() -> None:
    logits = torch.randn(len(TARGETS), 2, generator=torch.Generator().manual_seed(1))
    ours = ClassWeightedCrossEntropy(None, label_smoothing=0.2)(logits, TARGETS)
    theirs = nn.CrossEntropyLoss(label_smoothing=0.2)(logits, TARGETS)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_rejects_smoothing_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError):
        ClassWeightedCrossEntropy(WEIGHTS, label_smoothing=1.0)


def test_distillation_loss_is_zero_at_the_teacher_and_matches_torch_kl_times_t_squared() -> None:
    from nlu_models.losses import distillation_loss

    torch.manual_seed(0)
    teacher_logits, student_logits = torch.randn(5, 4), torch.randn(5, 4)
    temperature = 2.0
    teacher = torch.softmax(teacher_logits / temperature, dim=-1)
    assert distillation_loss(teacher_logits, teacher, temperature).item() == pytest.approx(0.0, abs=1e-6)
    expected = torch.nn.functional.kl_div(torch.log_softmax(student_logits / temperature, dim=-1), teacher,
                                          reduction="batchmean") * temperature**2
    assert distillation_loss(student_logits, teacher, temperature).item() == pytest.approx(expected.item(), rel=1e-5)
