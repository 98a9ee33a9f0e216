"""A tiny classifier trained once per session (a few seconds of fine-tuning)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu_models.data import Example

INTENTS = {
    "greet": ["hi", "hello", "hey there", "good morning", "hiya", "hello friend"],
    "order_status": ["where is my order", "track my parcel", "has my package shipped", "order status please",
                     "when does my order arrive", "where is my delivery"],
    "refund": ["where is my refund", "I want my money back", "refund status", "when do I get refunded",
               "has the refund gone through", "money back please"],
}
SENTIMENT = {
    "negative": ["this is terrible", "I hate it", "awful service", "I am angry", "worst ever", "so annoyed"],
    "neutral": ["where is it", "my order number", "ok", "the parcel", "I live in Paris", "tuesday"],
    "positive": ["thank you", "great job", "love it", "awesome", "wonderful", "very happy"],
}


def tiny_examples() -> tuple[list[Example], list[Example]]:
    intents = [Example(t, label) for label, texts in INTENTS.items() for t in texts]
    sentiment = [Example(t, label) for label, texts in SENTIMENT.items() for t in texts]
    return intents, sentiment


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(trained classifier, exported folder) on tiny data."""
    from nlu_models.data import data_hash
    from nlu_models.export import export_classifier
    from nlu_models.trainer import JointTrainer, TrainingConfig

    intents, sentiment = tiny_examples()
    trained = JointTrainer(TrainingConfig(max_epochs=3, patience=3, batch_size=8, max_length=16)).fit(intents, sentiment)
    folder = tmp_path_factory.mktemp("tiny") / "classifier"
    export_classifier(trained, folder, data_hash(intents, sentiment), [e.text for e in intents])
    return trained, folder
