"""Rasa custom actions, served by rasa-sdk from the Python 3.11 environment."""
