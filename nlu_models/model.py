"""The joint model: one BERT encoder, mean pooling, an intent head and a sentiment head (torch)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, ignoring padding (what all-MiniLM-L6-v2 was trained with)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class CosineHead(nn.Module):
    """Scaled cosine similarity to one learned prototype per class.

    Initialised from the class centroids of the pre-trained embeddings, so fine-tuning starts
    where a nearest-centroid classifier on the frozen encoder already is (this matters most with
    few examples per class).
    """

    def __init__(self, hidden: int, num_classes: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, hidden) * 0.02)
        self.scale = scale

    @torch.no_grad()
    def init_from_prototypes(self, prototypes: torch.Tensor) -> None:
        """Set each class vector to the (normalised) mean embedding of its examples."""
        self.weight.copy_(nn.functional.normalize(prototypes, dim=-1))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits = scale · cos(pooled, class vector)."""
        return self.scale * nn.functional.normalize(pooled, dim=-1) @ nn.functional.normalize(self.weight, dim=-1).T


class IntentSentimentModel(nn.Module):
    """Shared encoder with two classification heads.

    Args:
        encoder_path: Local Hugging Face BERT-family model folder.
        num_intents: Number of intent labels.
        num_sentiments: Number of sentiment labels (negative / neutral / positive).
        dropout: Dropout on the pooled vector during training.
        intent_scale: Scale of the intent head's cosine logits.
    """

    def __init__(self, encoder_path: str, num_intents: int, num_sentiments: int = 3, dropout: float = 0.1,
                 intent_scale: float = 20.0) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(encoder_path)
        hidden = int(self.encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.intent_head = CosineHead(hidden, num_intents, intent_scale)
        self.sentiment_head = nn.Linear(hidden, num_sentiments)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence vectors (no dropout applied here)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (intent logits, sentiment logits)."""
        pooled = self.dropout(self.embed(input_ids, attention_mask))
        return self.intent_head(pooled), self.sentiment_head(pooled)
