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
    """Scaled cosine similarity to one learned prototype per class, optionally several for one class.

    Initialised from the class centroids of the pre-trained embeddings, so fine-tuning starts
    where a nearest-centroid classifier on the frozen encoder already is (this matters most with
    few examples per class). A heterogeneous class such as "out of scope" (anything the bot does
    not handle) can get ``extra`` more prototypes; its logit is the best of its prototypes (sub-centre
    prototypes, as in Deng et al.'s sub-centre ArcFace, ECCV 2020).

    Args:
        hidden: Size of the pooled vectors.
        num_classes: Number of classes (logits).
        scale: Logits are this times the cosine similarity.
        extra: Additional prototypes of class ``extra_class``.
        extra_class: The class the additional prototypes belong to.
    """

    def __init__(self, hidden: int, num_classes: int, scale: float = 20.0, extra: int = 0,
                 extra_class: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes + extra, hidden) * 0.02)
        self.scale = scale
        self.num_classes = num_classes
        self.extra = extra
        self.extra_class = extra_class

    @torch.no_grad()
    def init_from_prototypes(self, prototypes: torch.Tensor, extra: torch.Tensor | None = None) -> None:
        """Set each class vector to the (normalised) mean embedding of its examples.

        Args:
            prototypes: One vector per class.
            extra: The additional prototypes of ``extra_class`` (e.g. its examples' cluster centres).
        """
        rows = prototypes if extra is None else torch.cat([prototypes, extra])
        self.weight.copy_(nn.functional.normalize(rows, dim=-1))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits = scale · cos(pooled, class vector), the best of a class's vectors where it has several."""
        logits = self.scale * nn.functional.normalize(pooled, dim=-1) @ nn.functional.normalize(self.weight, dim=-1).T
        if not self.extra:
            return logits
        c = self.extra_class
        best = torch.maximum(logits[:, c:c + 1], logits[:, self.num_classes:].max(dim=1, keepdim=True).values)
        return torch.cat([logits[:, :c], best, logits[:, c + 1:self.num_classes]], dim=1)


class IntentSentimentModel(nn.Module):
    """Shared encoder with two classification heads.

    Args:
        encoder_path: Local Hugging Face BERT-family model folder.
        num_intents: Number of intent labels.
        num_sentiments: Number of sentiment labels (negative / neutral / positive).
        dropout: Dropout on the pooled vector during training.
        intent_scale: Scale of the intent head's cosine logits.
        extra_prototypes: Additional intent-head prototypes of intent ``extra_class``.
        extra_class: The intent (e.g. out of scope) the additional prototypes belong to.
    """

    def __init__(self, encoder_path: str, num_intents: int, num_sentiments: int = 3, dropout: float = 0.1,
                 intent_scale: float = 20.0, extra_prototypes: int = 0, extra_class: int = 0) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(encoder_path)
        hidden = int(self.encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.intent_head = CosineHead(hidden, num_intents, intent_scale, extra_prototypes, extra_class)
        self.sentiment_head = nn.Linear(hidden, num_sentiments)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence vectors (no dropout applied here)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (intent logits, sentiment logits)."""
        pooled = self.dropout(self.embed(input_ids, attention_mask))
        return self.intent_head(pooled), self.sentiment_head(pooled)
