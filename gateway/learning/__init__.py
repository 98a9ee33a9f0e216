"""The learning loop: review inbox, training data versions (retraining and model registry come next)."""
