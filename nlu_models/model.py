"""The joint model: one BERT encoder, mean pooling, an intent head and a sentiment head (torch)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, ignoring padding (what all-MiniLM-L6-v2 was trained with)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class IntentSentimentModel(nn.Module):
    """Shared encoder with two classification heads.

    Args:
        encoder_path: Local Hugging Face BERT-family model folder.
        num_intents: Number of intent labels.
        num_sentiments: Number of sentiment labels (negative / neutral / positive).
        dropout: Dropout on the pooled vector during training.
    """

    def __init__(self, encoder_path: str, num_intents: int, num_sentiments: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(encoder_path)
        hidden = int(self.encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, num_intents)
        self.sentiment_head = nn.Linear(hidden, num_sentiments)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (intent logits, sentiment logits)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(mean_pool(hidden, attention_mask))
        return self.intent_head(pooled), self.sentiment_head(pooled)
