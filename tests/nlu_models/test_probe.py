"""The frozen-encoder probe: folds, the C search and the head's numpy maths (no encoder needed)."""

from __future__ import annotations

import numpy as np
import pytest

from nlu_models.probe import ProbeHead, ProbeTrainer, fold_count, save_heads, stratified_folds
from nlu_models.calibration import threshold_without_oos


def _blobs(per_class: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, 16)) * 3
    vectors = np.concatenate([c + rng.normal(size=(per_class, 16)) for c in centres])
    return vectors.astype(np.float32), [f"c{i}" for i in range(classes) for _ in range(per_class)]


def test_folds_are_stratified_disjoint_and_complete() -> None:
    labels = ["a"] * 10 + ["b"] * 7 + ["c"] * 3
    folds = stratified_folds(labels, 3, seed=1)
    rows = np.concatenate(folds)
    assert sorted(rows.tolist()) == list(range(20))
    for fold in folds:
        assert {labels[i] for i in fold} >= {"a", "b"}  # every large label in every fold
    assert max(map(len, folds)) - min(map(len, folds)) <= 1  # labels continue where the last one stopped


def test_fold_count_follows_the_median_label() -> None:
    assert fold_count(["a"] * 10 + ["b"] * 10) == 5
    assert fold_count(["a"] * 3 + ["b"] * 3 + ["c"] * 1) == 3
    assert fold_count(["a", "b", "c"]) == 0  # one example each: nothing to cross-validate
    assert fold_count(["a"] * 9) == 0


def test_probe_fits_predicts_and_reports_cross_validation() -> None:
    vectors, labels = _blobs(12)
    fit = ProbeTrainer(c_grid=(1.0, 20.0)).fit(vectors, labels)
    assert fit.folds == 5 and set(fit.grid) == {1.0, 20.0} and fit.c in fit.grid
    assert fit.cv_accuracy is not None and fit.cv_accuracy > 0.9
    assert fit.oof_logits is not None and fit.oof_logits.shape == (36, 3)
    predicted = fit.head.logits(vectors).argmax(axis=1)
    assert np.mean(np.array(fit.head.classes)[predicted] == np.array(labels)) == 1.0


def test_two_classes_give_two_symmetric_rows() -> None:
    vectors, labels = _blobs(8, classes=2)
    head = ProbeTrainer().fit(vectors, labels).head
    assert head.weight.shape == (2, 16)
    assert np.allclose(head.weight[0], -head.weight[1])
    assert np.mean(np.array(head.classes)[head.logits(vectors).argmax(1)] == np.array(labels)) == 1.0


def test_head_round_trips_through_npz(tmp_path) -> None:  # type: ignore[no-untyped-def]
    vectors, labels = _blobs(6)
    head = ProbeTrainer(c_grid=(20.0,)).fit(vectors, labels).head
    save_heads(tmp_path / "heads.npz", {"intent": head})
    with np.load(tmp_path / "heads.npz") as arrays:
        loaded = ProbeHead.from_arrays(dict(arrays), "intent", head.classes)
    assert np.allclose(loaded.logits(vectors), head.logits(vectors))
    with pytest.raises(ValueError, match="rows"), np.load(tmp_path / "heads.npz") as arrays:
        ProbeHead.from_arrays(dict(arrays), "intent", ["just", "two"])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ProbeTrainer(c_grid=())
    with pytest.raises(ValueError, match="two labels"):
        ProbeTrainer().fit(np.ones((3, 4)), ["a", "a", "a"])


def test_threshold_without_oos_keeps_the_asked_share() -> None:
    scores = np.linspace(0, 1, 1001)
    threshold = threshold_without_oos(scores, 0.02)
    assert abs(np.mean(scores < threshold) - 0.02) < 0.002
    assert threshold_without_oos(np.array([-np.inf, -np.inf]), 0.02) == 0.0


def test_intent_names_become_sentences_only_when_they_say_something() -> None:
    from nlu_models.probe_first import label_text

    assert label_text("order_status") == "order status"
    assert label_text("getExchangeRate") == "get exchange rate"
    assert label_text("iot-hue_lightoff") == "iot hue lightoff"
    assert label_text("intent_17") is None and label_text("0") is None and label_text("ab") is None


def test_anchors_are_kept_only_when_cross_validation_says_they_help() -> None:
    vectors, labels = _blobs(4, classes=4, seed=3)
    centres = np.stack([vectors[[i for i, l in enumerate(labels) if l == c]].mean(0) for c in sorted(set(labels))])
    helpful = ProbeTrainer(c_grid=(20.0,)).fit(vectors, labels, anchors=(centres, sorted(set(labels))))
    assert set(helpful.anchor_scores) == {"False", "True"}
    assert helpful.anchors_used == (helpful.anchor_scores["True"] > helpful.anchor_scores["False"])
    wrong = ProbeTrainer(c_grid=(20.0,)).fit(vectors, labels, anchors=(-centres * 5, sorted(set(labels))))
    assert not wrong.anchors_used  # anchors pointing away from their class lose the comparison
