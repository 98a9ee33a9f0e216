"""Trainer pieces: length-bucketed batching, linear probing, and the trained tiny model."""

from __future__ import annotations

import random

import torch
from torch import nn

from nlu_models.model import CosineHead
from nlu_models.data import Example
from nlu_models.trainer import JointTrainer, TrainingConfig, collate, length_bucketed_batches, stratified_split


def test_bucketed_batches_cover_every_example_once_with_little_padding() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(5000)]
    batches = length_bucketed_batches(lengths, 32, random.Random(1))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(5000))
    assert all(1 <= len(b) <= 32 for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    shuffled = list(range(5000))
    random.Random(2).shuffle(shuffled)
    random_padded = sum(len(shuffled[s : s + 32]) * max(lengths[i] for i in shuffled[s : s + 32]) for s in range(0, 5000, 32))
    assert padded < 0.7 * random_padded  # far less padding than random batches of the same size


def test_bucketed_batches_are_shuffled_per_seed() -> None:
    lengths = [5] * 640
    assert length_bucketed_batches(lengths, 32, random.Random(1)) != length_bucketed_batches(lengths, 32, random.Random(2))


def test_collate_pads_and_masks() -> None:
    ids, mask = collate([[101, 7, 102], [101, 102]], 0, torch.device("cpu"))
    assert ids.tolist() == [[101, 7, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def test_tiny_model_learns_its_intents(tiny_export) -> None:  # type: ignore[no-untyped-def]
    trained, _ = tiny_export
    trained.oos_threshold = float("-inf")
    predicted = trained.predict_intents(["hello there", "where is my parcel", "I want a refund"])
    assert predicted == ["greet", "order_status", "refund"]
    assert [h["epoch"] for h in trained.metrics["history"]][0] == 1


OUT_OF_SCOPE = ["what is the weather like on mars", "tell me a joke about penguins", "who won the football last night",
                "a recipe for pancakes please", "how tall is mount everest", "play some jazz music",
                "what is the capital of peru", "translate cat into german"]


def test_out_of_scope_examples_train_their_own_class_and_are_served_as_out_of_scope(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from nlu_models.calibration import softmax
    from nlu_models.data import Example, data_hash
    from nlu_models.export import export_classifier
    from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor
    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    oos = [Example(text, "oos") for text in OUT_OF_SCOPE]
    trained = JointTrainer(TrainingConfig(max_epochs=3, patience=3, batch_size=8, max_length=16)).fit(intents + oos, sentiment)
    assert "oos" in trained.intents and trained.oos_intents == ["oos"]
    assert trained.metrics["oos_validation_examples"] >= 1  # held-out out-of-scope examples chose the threshold

    logits = np.array([[7.0, 2.0, 1.0], [1.0, 2.0, 5.0]])
    trained.intents, saved = ["greet", "oos", "refund"], trained.intents
    trained.intent_temperature = 1.0
    assert np.allclose(trained.in_scope_score(logits), softmax(logits).max(axis=1))  # default: probability
    trained.config.oos_score = "max_logit"
    assert trained.in_scope_score(logits).tolist() == [7.0, 5.0]
    logits[0] = [2.0, 7.0, 1.0]
    assert trained.in_scope_score(logits).tolist() == [-np.inf, 5.0]  # top class "oos": never in scope
    trained.intents, trained.config.oos_score = saved, "probability"

    trained.oos_threshold = float("-inf")  # only the trained class decides here
    texts = [OUT_OF_SCOPE[0], OUT_OF_SCOPE[3], "where is my order", "hello"]
    assert trained.predict_intents(texts, oos_label="OUT") == ["OUT", "OUT", "order_status", "greet"]
    folder = tmp_path / "classifier"
    meta = export_classifier(trained, folder, data_hash(intents + oos, sentiment), texts)
    assert meta["oos_intents"] == ["oos"] and meta["oos_score"] == "probability"
    served = OnnxIntentSentimentPredictor(folder, quantized=False).predict(texts)
    assert [p.out_of_scope for p in served] == [True, True, False, False]
    assert served[2].intent_ranking[0][0] == "order_status"


def test_weight_average_follows_the_weights_and_swaps_back() -> None:
    from nlu_models.trainer import WeightAverage

    param = nn.Parameter(torch.zeros(3))
    average = WeightAverage([param], decay=0.5)
    with torch.no_grad():
        param.fill_(1.0)
    for _ in range(3):
        average.update()
    # warm-up caps the first decays at 2/11, 3/12, 4/13: the average approaches 1 from below
    expected = 1 - (2 / 11) * (3 / 12) * (4 / 13)
    assert torch.allclose(average.shadow[0], torch.full((3,), expected))
    average.swap()
    assert torch.allclose(param.detach(), torch.full((3,), expected))
    average.swap()
    assert torch.allclose(param.detach(), torch.ones(3))


def test_training_with_weight_averaging_learns_the_tiny_intents() -> None:
    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    config = TrainingConfig(max_epochs=3, patience=3, batch_size=8, max_length=16, ema_decay=0.9)
    trained = JointTrainer(config).fit(intents, sentiment)
    trained.oos_threshold = float("-inf")
    assert trained.predict_intents(["hello there", "where is my parcel", "I want a refund"]) == ["greet", "order_status", "refund"]


def test_intent_scale_bounds_the_intent_logits() -> None:
    from nlu_models.model import IntentSentimentModel
    from nlu_models.trainer import default_encoder_path

    model = IntentSentimentModel(default_encoder_path(), 4, intent_scale=16.0).eval()
    ids, mask = collate([[101, 7592, 102], [101, 2054, 2003, 102]], 0, torch.device("cpu"))
    with torch.no_grad():
        intent, _ = model(ids, mask)
    assert model.intent_head.scale == 16.0
    assert float(intent.abs().max()) <= 16.0 + 1e-4


def _examples(sizes: dict[str, int]) -> list[Example]:
    return [Example(f"{label} example {i}", label) for label, size in sizes.items() for i in range(size)]


def test_split_keeps_a_small_new_intent_whole_when_others_can_fill_validation() -> None:
    # Bot intents of 20 examples and a new intent with 6 reviewer-labelled ones: all 6 train.
    train, held_out = stratified_split(_examples({"greet": 20, "order_status": 20, "stock_availability": 6}), 0.15, 13)
    assert sum(e.label == "stock_availability" for e in train) == 6
    assert {e.label for e in held_out} == {"greet", "order_status"}
    assert sum(e.label == "greet" for e in held_out) == 3  # round(20 × 0.15)


def test_split_of_tiny_data_still_holds_out_one_per_label() -> None:
    train, held_out = stratified_split(_examples({"a": 4, "b": 3, "c": 2}), 0.15, 13)
    assert sorted(e.label for e in held_out) == ["a", "b"]
    assert len(train) == 7


def test_average_states_averages_weights_and_keeps_integer_buffers() -> None:
    from nlu_models.trainer import average_states

    first = {"w": torch.tensor([1.0, 3.0]), "ids": torch.tensor([0, 1])}
    second = {"w": torch.tensor([3.0, 5.0]), "ids": torch.tensor([7, 7])}
    averaged = average_states([first, second])
    assert torch.equal(averaged["w"], torch.tensor([2.0, 4.0]))
    assert torch.equal(averaged["ids"], torch.tensor([0, 1]))


def test_weight_soup_averages_runs_with_consecutive_seeds_into_one_model() -> None:
    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    config = TrainingConfig(max_epochs=2, patience=2, batch_size=8, max_length=16, soup_size=2)
    trained = JointTrainer(config).fit(intents, sentiment)
    members = trained.metrics["soup"]
    assert [m["seed"] for m in members] == [13, 14]
    assert all(m["epochs_run"] >= 1 for m in members)
    trained.oos_threshold = float("-inf")
    assert trained.predict_intents(["hello there", "where is my parcel", "I want a refund"]) == ["greet", "order_status", "refund"]


def test_a_soup_needs_at_least_one_run() -> None:
    import pytest

    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    with pytest.raises(ValueError, match="soup_size"):
        JointTrainer(TrainingConfig(soup_size=0)).fit(intents, sentiment)


def test_distillation_trains_one_more_run_towards_the_soup_runs_ensemble_and_serves_it() -> None:
    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    config = TrainingConfig(max_epochs=2, patience=2, batch_size=8, max_length=16, soup_size=2,
                            distill_weight=0.5, distill_temperature=2.0)
    trained = JointTrainer(config).fit(intents, sentiment)
    assert [m["seed"] for m in trained.metrics["soup"]] == [13, 14]
    distilled = trained.metrics["distilled"]
    assert distilled["seed"] == 15 and distilled["weight"] == 0.5 and distilled["temperature"] == 2.0
    assert trained.metrics["validation_score"] == distilled["validation_score"]
    assert trained.metrics["soup_validation_score"] is not None
    trained.oos_threshold = float("-inf")
    assert trained.predict_intents(["hello there", "where is my parcel", "I want a refund"]) == ["greet", "order_status", "refund"]


def test_distillation_settings_out_of_range_are_refused() -> None:
    import pytest

    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    with pytest.raises(ValueError, match="distill_weight"):
        JointTrainer(TrainingConfig(distill_weight=1.5)).fit(intents, sentiment)
    with pytest.raises(ValueError, match="distill_temperature"):
        JointTrainer(TrainingConfig(distill_temperature=0.0)).fit(intents, sentiment)


def test_greedy_soup_keeps_a_run_only_when_the_soup_with_it_scores_no_worse(monkeypatch) -> None:
    from types import SimpleNamespace

    from nlu_models.trainer import _MemberResult

    model = torch.nn.Linear(1, 1, bias=False)
    # Validation score peaks where the weight is 1.1: runs at 1.0 and 1.2 average to it, 2.0 is far off.
    monkeypatch.setattr(JointTrainer, "_validation_score",
                        lambda self, trained, v, s: (1 - abs(trained.model.weight.detach().item() - 1.1) / 10, {}))

    def run(seed: int, weight: float) -> _MemberResult:
        return _MemberResult(seed, {"weight": torch.tensor([[weight]])}, 1 - abs(weight - 1.1) / 10, 1, [])

    members = [run(13, 2.0), run(14, 1.0), run(15, 1.2)]
    trained = SimpleNamespace(model=model)
    greedy, _ = JointTrainer(TrainingConfig(soup_rule="greedy"))._choose_soup(trained, members, [], [])
    assert [m.seed for m in greedy] == [14, 15]
    uniform, _ = JointTrainer(TrainingConfig())._choose_soup(trained, members, [], [])
    assert [m.seed for m in uniform] == [13, 14, 15]


def test_greedy_soup_records_which_runs_it_kept_and_unknown_rules_are_refused() -> None:
    import pytest

    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    config = TrainingConfig(max_epochs=2, patience=2, batch_size=8, max_length=16, soup_size=2, soup_rule="greedy")
    trained = JointTrainer(config).fit(intents, sentiment)
    assert trained.metrics["soup_rule"] == "greedy"
    members = trained.metrics["soup"]
    best = max(members, key=lambda m: m["validation_score"])
    assert best["in_soup"] and sum(m["in_soup"] for m in members) >= 1
    assert trained.metrics["validation_score"] >= best["validation_score"]
    with pytest.raises(ValueError, match="soup_rule"):
        JointTrainer(TrainingConfig(soup_rule="best")).fit(intents, sentiment)


def test_extra_prototypes_give_their_class_the_best_of_its_vectors() -> None:
    head = CosineHead(2, 3, scale=10.0, extra=2, extra_class=1)
    head.init_from_prototypes(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
                              torch.tensor([[0.0, -1.0], [1.0, 1.0]]))
    logits = head(torch.tensor([[0.0, -2.0], [1.0, 0.0]]))
    assert logits.shape == (2, 3)
    assert torch.allclose(logits[0], torch.tensor([0.0, 10.0, 0.0]), atol=1e-5)  # second vector of class 1 wins
    assert torch.allclose(logits[1], torch.tensor([10.0, 10.0 / 2**0.5, -10.0]), atol=1e-5)  # third one
    assert CosineHead(2, 3, extra=0)(torch.ones(1, 2)).shape == (1, 3)


def test_out_of_scope_sub_prototypes_and_penalty_train_export_and_serve_like_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from nlu_models.data import Example, data_hash
    from nlu_models.export import export_classifier
    from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor
    from tests.nlu_models.conftest import tiny_examples

    intents, sentiment = tiny_examples()
    oos = [Example(text, "oos") for text in OUT_OF_SCOPE]
    trained = JointTrainer(TrainingConfig(max_epochs=3, patience=3, batch_size=8, max_length=16,
                                          oos_prototypes=3, oos_score="max_logit",
                                          oos_penalties=(0.0, 0.5, 1.0))).fit(intents + oos, sentiment)
    assert trained.model.intent_head.weight.shape[0] == len(trained.intents) + 3
    assert trained.oos_penalty in (0.0, 0.5, 1.0) and trained.metrics["oos_penalty"] == trained.oos_penalty
    texts = [OUT_OF_SCOPE[0], "where is my order", "hello"]
    torch_logits = trained.logits(texts)[0]
    assert torch_logits.shape == (3, len(trained.intents))
    folder = tmp_path / "classifier"
    meta = export_classifier(trained, folder, data_hash(intents + oos, sentiment), texts)
    assert meta["oos_penalty"] == trained.oos_penalty
    served = OnnxIntentSentimentPredictor(folder, quantized=False).predict(texts)
    assert [p.intent_ranking[0][0] for p in served] == [trained.intents[int(i)] for i in torch_logits.argmax(1)]
    # The server applies the same penalty and threshold as the trainer.
    assert [p.out_of_scope for p in served] == [label == "OUT" for label in trained.predict_intents(texts, "OUT")]
    assert len(served[0].intent_ranking) <= len(trained.intents)
    assert np.isfinite(torch_logits).all()
