"""Head initialisation: prototypes, spherical k-means centres, the linear probe, class weights."""

from __future__ import annotations

import torch
from torch import nn

from nlu_models.head_init import class_prototypes, inverse_frequency_weights, probe_head, spherical_kmeans
from nlu_models.model import CosineHead


def test_prototypes_are_unit_mean_directions_and_zero_for_an_empty_class() -> None:
    vectors = torch.tensor([[2.0, 0.0], [0.0, 3.0], [4.0, 0.0]])
    prototypes = class_prototypes(vectors, torch.tensor([0, 1, 0]), 3)
    assert torch.allclose(prototypes, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))


def test_linear_probe_fits_a_head_that_prototypes_alone_get_wrong() -> None:
    torch.manual_seed(0)
    # Two overlapping classes whose centroids misclassify many points; a trained head separates them.
    a = torch.randn(200, 8) + torch.tensor([1.0] + [0.0] * 7)
    b = torch.randn(200, 8) * 0.3 + torch.tensor([0.0, 1.0] + [0.0] * 6)
    vectors, targets = torch.cat([a, b]), torch.tensor([0] * 200 + [1] * 200)
    head = CosineHead(8, 2)
    head.init_from_prototypes(class_prototypes(vectors, targets, 2))
    before = float((head(vectors).argmax(1) == targets).float().mean())
    probe_head(head, vectors, targets, nn.CrossEntropyLoss(), steps=200)
    after = float((head(vectors).argmax(1) == targets).float().mean())
    assert after >= before
    assert after > 0.8


def test_cluster_centres_are_unit_vectors_near_each_group() -> None:
    torch.manual_seed(0)
    groups = [torch.tensor([5.0, 0.0, 0.0]), torch.tensor([0.0, 5.0, 0.0]), torch.tensor([0.0, 0.0, 5.0])]
    vectors = torch.cat([g + 0.3 * torch.randn(30, 3) for g in groups])
    centres = spherical_kmeans(vectors, 3, seed=0)
    assert torch.allclose(centres.norm(dim=1), torch.ones(3), atol=1e-5)
    assert sorted(int(c.argmax()) for c in centres) == [0, 1, 2]  # one centre per group
    assert spherical_kmeans(vectors[:2], 5, seed=0).shape == (5, 3)

    assert torch.equal(spherical_kmeans(vectors, 3, seed=4), spherical_kmeans(vectors, 3, seed=4))  # seeded


def test_class_weights_favour_small_classes_and_average_one() -> None:
    weights = inverse_frequency_weights(["a", "a", "a", "b"], ["a", "b", "c"])
    assert weights[1] > weights[0] and abs(float(weights.mean()) - 1.0) < 1e-6
    assert torch.equal(inverse_frequency_weights([], ["a", "b"]), torch.ones(2))


def test_probe_with_no_steps_or_no_rows_leaves_the_head_as_it_was() -> None:
    head = CosineHead(2, 2)
    before = [p.detach().clone() for p in head.parameters()]
    probe_head(head, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), nn.CrossEntropyLoss(), 5)
    probe_head(head, torch.ones(3, 2), torch.tensor([0, 1, 0]), nn.CrossEntropyLoss(), 0)
    assert all(torch.equal(a, b) for a, b in zip(before, head.parameters()))
