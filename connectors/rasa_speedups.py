"""Four costs Rasa 3.6 pays on every turn that buy nothing, removed where the Rasa process starts.

Imported by the Rasa process (``connectors/rasa_channel.py`` installs it): Rasa, jsonschema and threadpoolctl only.

* Every graph run (a message's parse, each action prediction: several per turn) rebuilt the minimal
  schema for its targets and handed it to dask's synchronous scheduler, about 6 % of Rasa's busy time
  under load. Here the node order is computed once per target set and the nodes are called in it, with
  the same arguments dask gave them (``(name, output)`` pairs, inputs as ``(name, value)``, the name
  itself for a need nothing provides) and the same ``GraphRunError`` when a node fails.
* Every custom action's answer is validated with ``jsonschema.validate(result, spec)``, which checks
  the (constant) schema itself before validating the answer: 28 % of Rasa's busy time under load
  (py-spy). Here the schema is checked once and the same validator is reused; answers are validated
  exactly as before and a bad one raises the same ``ValidationError``.
* Every event read back (a tracker's window, the events an action returns) found its class by walking
  all of ``Event``'s subclasses recursively, with an ``inspect.isabstract`` test for each (a third of a
  tracker retrieval's time). Here a type name's class is remembered once found; an unknown name
  still walks the classes (one defined later is found) and fails as before.
* numpy's BLAS (OpenBLAS, one thread per core) spread each message's small matrix products (a probe
  head: one row against a few hundred columns) over every core and left the extra threads spinning
  after each: a probe model reading 768 features cost 9.5 ms of CPU per message for 4.8 ms of wall
  time, against 4.1 / 4.1 on one thread. The process serves many conversations at once; BLAS runs on
  one thread (``threadpoolctl``). ONNX Runtime keeps its own thread setting.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Set, Text, Tuple

logger = logging.getLogger(__name__)
_installed = False


def _node_order(schema: Any, targets: List[Text]) -> List[Tuple[Text, Tuple[Text, ...]]]:
    """The nodes the targets need, each after its needs, with the names it needs (in ``needs`` order)."""
    order: List[Tuple[Text, Tuple[Text, ...]]] = []
    placed: Set[Text] = set()

    def visit(name: Text, path: Tuple[Text, ...]) -> None:
        if name in placed or name not in schema.nodes:
            return
        if name in path:
            raise ValueError(f"the graph has a cycle through {name}")
        needs = tuple(schema.nodes[name].needs.values())
        for need in needs:
            visit(need, path + (name,))
        placed.add(name)
        order.append((name, needs))

    for target in targets:
        visit(target, ())
    return order


def _sequential_run(self: Any, inputs: Optional[Dict[Text, Any]] = None,
                    targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
    """``DaskGraphRunner.run`` without dask: the same node calls, in a cached order, on this thread."""
    from rasa.engine.exceptions import GraphRunError

    run_targets = list(targets) if targets else list(self._graph_schema.target_names)
    orders = self.__dict__.setdefault("_switchboard_orders", {})
    key = tuple(run_targets)
    order = orders.get(key)
    if order is None:
        order = orders[key] = _node_order(self._graph_schema, run_targets)
    values: Dict[Text, Any] = {}
    for name, value in (inputs or {}).items():
        if isinstance(value, str) and value in self._graph_schema.nodes:
            raise GraphRunError(f"Input value '{value}' clashes with a node name.")
        values[name] = (name, value)
    try:
        for name, needs in order:
            values[name] = self._instantiated_nodes[name](*(values.get(need, need) for need in needs))
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e
    return dict(values[target] if target in values else (target, target) for target in run_targets)


def _cached_event_types() -> None:
    """``Event.resolve_by_type`` with a memory of the classes it found (same answers, same errors)."""
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    found: Dict[Text, Any] = {}

    def resolve_by_type(type_name: Text, default: Optional[Any] = None) -> Optional[Any]:
        cls = found.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:
                found[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)


def install() -> None:
    """Patch ``RemoteAction._validate_action_result``, ``DaskGraphRunner.run``, ``Event.resolve_by_type``; BLAS on one thread (idempotent)."""
    global _installed
    if _installed:
        return
    _cached_event_types()
    from rasa.engine.runner.dask import DaskGraphRunner

    DaskGraphRunner.run = _sequential_run
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
    from threadpoolctl import threadpool_limits

    # After the imports above, so every BLAS loaded by then is limited; lasts for the process.
    threadpool_limits(limits=1, user_api="blas")
    _installed = True
    logger.debug("action results are validated with a cached JSON-schema validator")
