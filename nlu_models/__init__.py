"""Intent + sentiment classifier: training (torch), export (ONNX) and serving (ONNX Runtime in Rasa).

Importing this package imports nothing heavy: the Rasa process (``.venv-rasa``) loads
``nlu_models.rasa_component`` and ``nlu_models.onnx_predictor``, which must never pull in torch.
"""
