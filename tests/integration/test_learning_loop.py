"""The learning loop on the real stack: log → review inbox → retraining → gate → hot swap → rollback.

Customers ask whether things are back in stock, which the bot has no intent for: the messages are
logged with low confidence or as fallbacks, show up in the review inbox, and a reviewer files them
under a new intent. One API call retrains; the candidate passes the gate and is loaded into the running
Rasa server while customers keep talking (none of them sees an error); the bot now understands those
messages. A deliberately worse model (the bot's data with two pairs of intents swapped) is refused.
One command rolls back, and the running bot is the old one again.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from gateway.db.models import Message, Sender
from gateway.db.session import create_db_engine, create_session_factory
from gateway.learning.retraining import RetrainingPipeline
from gateway.settings import PROJECT_ROOT
from gateway.stack import Stack, _env_for
from tests.conftest import tenant_admin_headers

NEW_INTENT = "stock_availability"
RESTOCK = [
    "is the blue sofa back in stock",
    "when will the oak table be restocked",
    "notify me when size 9 is available",
    "is this lamp available again",
    "are the linen sheets back in stock yet",
    "will you restock the green kettle soon",
]
TROUBLE = "having trouble"


def classifier_meta(archive: Path) -> dict[str, Any]:
    """The classifier's meta.json inside a Rasa model archive."""
    import json
    import tarfile

    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("classifier/meta.json"))
        handle = tar.extractfile(member)
        assert handle is not None
        return json.loads(handle.read())


def serving_model_id(stack: Stack, tenant_id: str, say: Any) -> str:
    """The model id of the agent Rasa serves ``tenant_id`` with (a turn first, so it is loaded)."""
    s = stack.settings
    say("hello")
    agents = httpx.get(f"{s.rasa_url}/webhooks/gateway/agents",
                       headers={"Authorization": f"Bearer {s.rasa_token.get_secret_value()}"}).json()["agents"]
    return next(a["model_id"] for a in agents if a["tenant_id"] == tenant_id)


class Api:
    """The gateway's customer and admin APIs."""

    def __init__(self, stack: Stack) -> None:
        s = stack.settings
        assert s.admin_token is not None
        self.stack = stack
        self.customer = httpx.Client(base_url=s.gateway_url, timeout=120, headers={"X-Widget-Key": s.demo_widget_key})
        self.admin = httpx.Client(base_url=f"{s.gateway_url}/api/v1/admin/tenants/{s.demo_tenant}", timeout=120,
                                  headers=tenant_admin_headers(s.database_url, s.demo_tenant))

    def say(self, text: str) -> dict[str, Any]:
        response = self.customer.post("/api/v1/messages", json={"text": text})
        assert response.status_code == 200, response.text
        return response.json()

    def understood(self, text: str) -> tuple[str | None, str | None]:
        """Send ``text`` in a new conversation; the intent and model id the log recorded for it."""
        conversation = self.say(text)["conversation_id"]
        engine = create_db_engine(self.stack.settings.database_url)
        with create_session_factory(engine)() as session:
            message = session.execute(select(Message).where(Message.conversation_id == conversation,
                                                            Message.sender == Sender.CUSTOMER)).scalar_one()
        engine.dispose()
        return ((message.nlu or {}).get("intent") or {}).get("name"), message.model_id

    def rasa_model_id(self) -> str:
        """The model id of the agent Rasa serves the demo tenant with (after one turn, so it is loaded)."""
        return serving_model_id(self.stack, self.stack.settings.demo_tenant, self.say)

    def wait_for_stage(self, version: int, stage: str, timeout_s: float = 1200) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.admin.get(f"/models/{version}").json()
            if row["stage"] == stage or row["status"] != "training":
                return
            time.sleep(1)
        raise AssertionError(f"v{version} never reached {stage}")

    def wait_for_version(self, version: int, timeout_s: float = 1200) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.admin.get(f"/models/{version}").json()
            if row["status"] != "training" and row["stage"] is None:
                return row
            time.sleep(3)
        raise AssertionError(f"v{version} still training after {timeout_s}s")


class ChattyCustomer(threading.Thread):
    """Keeps talking to the bot while the model is swapped; records every reply."""

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.stop = threading.Event()
        self.turns: list[tuple[int, list[str]]] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.api.stack.settings.gateway_url, timeout=120,
                          headers={"X-Widget-Key": self.api.stack.settings.demo_widget_key}) as client:
            while not self.stop.is_set():
                response = client.post("/api/v1/messages", json={"text": "hello there"})
                replies = [r.get("text") or "" for r in response.json().get("replies", [])] if response.status_code == 200 else []
                self.turns.append((response.status_code, replies))
                time.sleep(0.3)


def sabotaged(language_data: str) -> str:
    """The tenant's language data with order_status↔refund_status and cancel_order↔return_item swapped."""
    document = yaml.safe_load(language_data)
    swap = {"order_status": "refund_status", "refund_status": "order_status",
            "cancel_order": "return_item", "return_item": "cancel_order"}
    for block in document["nlu"]:
        if block.get("intent") in swap:
            block["intent"] = swap[block["intent"]]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three real trainings and scorings: ~4 min alone, over 15 min on a loaded 2-core machine
def test_corrected_messages_retrain_promote_refuse_and_roll_back(running_stack: Stack, tmp_path: Path) -> None:
    api = Api(running_stack)
    settings = running_stack.settings
    before = api.admin.get("/models").json()
    base_version = before["production"]
    base_model_id = api.rasa_model_id()
    assert base_version is not None and before["versions"][0]["rasa_model_id"] == base_model_id

    # 1. Customers ask something the bot has no intent for: it gets them wrong.
    for text in RESTOCK:
        intent, model_id = api.understood(text)
        assert intent != NEW_INTENT and model_id == base_model_id

    # 2. They show up in the review inbox; a reviewer files them under a new intent in one click each.
    inbox = api.admin.get("/inbox", params={"limit": 500}).json()
    items = {item["text"]: item for item in inbox["items"]}
    found = [text for text in RESTOCK if text in items]
    assert len(found) >= 5, f"only {found} of the misunderstood messages reached the inbox"
    for text in found:
        assert set(items[text]["reasons"]) & {"low_confidence", "fallback"}
        decision = api.admin.post(f"/inbox/{items[text]['message_id']}", json={"action": "correct", "intent": NEW_INTENT})
        assert decision.status_code == 200, decision.text
        assert decision.json()["new_intent"] is True

    # 3. One call retrains; customers keep talking while the new model is swapped in.
    started = api.admin.post("/models/retrain", json={"promote": True, "refine": False})
    assert started.status_code == 202, started.text
    version = started.json()["version"]
    assert api.admin.post("/models/retrain").json()["error"] == "busy"  # one run at a time
    chatty = ChattyCustomer(api)
    # From the evaluation on (seconds to minutes), so customers are talking when the swap comes: the
    # comparison and the promotion can pass between two polls, and a customer started after them ran no turn.
    api.wait_for_stage(version, "evaluating")
    chatty.start()
    row = api.wait_for_version(version)
    chatty.stop.set()
    chatty.join(60)
    assert row["status"] == "production", row
    assert row["gate"]["passed"] and row["promoted_by"].startswith("admin")
    assert NEW_INTENT in row["intents"] and row["data_version_id"] is not None
    assert {c["metric"] for c in row["gate"]["checks"]} >= {"intent_accuracy", "conversation_tests"}
    assert chatty.turns, "no customer turn ran during the retraining"
    assert all(status == 200 for status, _ in chatty.turns)
    assert not any(TROUBLE in text for _, replies in chatty.turns for text in replies), "a customer saw an error"

    # 4. The running bot now understands them, with the new model.
    new_model_id = api.rasa_model_id()
    assert new_model_id == row["rasa_model_id"] != base_model_id
    for text in found:
        intent, model_id = api.understood(text)
        assert (intent, model_id) == (NEW_INTENT, new_model_id), text

    # 4b. The refinement: the same data fine-tuned (one epoch here), the fine-tuned model served only if it
    # beat the probe on the same folds, then the same gate; not metered, not promoted here.
    engine = create_db_engine(settings.database_url)
    try:
        pipeline = RetrainingPipeline(settings, create_session_factory(engine))
        refined = pipeline.refine(settings.demo_tenant, pipeline.registry.get(settings.demo_tenant, version), "ops",
                                  promote=False, classifier_settings={"epochs": 1, "patience": 1})
    finally:
        engine.dispose()
    assert refined is not None and refined.source == "refine" and refined.version == version + 1
    assert refined.status in ("candidate", "refused") and refined.metrics, refined
    assert refined.data_version_id == row["data_version_id"]
    meta = classifier_meta(Path(refined.archive_path))
    assert meta["training_config"]["finetune"] == "auto"
    selection = meta["metrics"]["selection"]
    assert "probe_score" in selection and "finetuned_score" in selection, selection
    assert meta["kind"] == ("finetuned" if selection["finetuned_score"] > selection["probe_score"] else "probe")
    assert api.rasa_model_id() == new_model_id

    # 5. A deliberately worse model is refused by the gate and never reaches Rasa.
    engine = create_db_engine(settings.database_url)
    try:
        pipeline = RetrainingPipeline(settings, create_session_factory(engine))
        store = pipeline.assistants.store
        honest = store.current(settings.demo_tenant)
        store.save(settings.demo_tenant, honest.template, honest.settings, sabotaged(honest.language_data), "import",
                   "saboteur")
        try:
            worse = pipeline.retrain(settings.demo_tenant, "saboteur")
        finally:  # the tenant's own data back as its newest revision
            store.save(settings.demo_tenant, honest.template, honest.settings, honest.language_data, "import", "ops")
    finally:
        engine.dispose()
    assert worse.status == "refused", worse
    assert worse.gate and not worse.gate["passed"]
    assert any(r.startswith("intent_accuracy dropped") for r in worse.gate["reasons"]), worse.gate["reasons"]
    assert api.rasa_model_id() == new_model_id
    assert api.admin.post(f"/models/{worse.version}/promote").status_code == 409
    # Both runs built a model, so both are on the tenant's bill (the plan's training_runs).
    usage = api.admin.get("/usage").json()
    assert next(u for u in usage["units"] if u["unit"] == "training_runs")["used"] == 2

    # 6. Rollback is one command; the running bot is the previous version again.
    result = subprocess.run([sys.executable, "-m", "gateway", "rollback", settings.demo_tenant, "--actor", "ops"],
                            cwd=PROJECT_ROOT, env=_env_for(settings), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert api.rasa_model_id() == base_model_id
    listing = api.admin.get("/models").json()
    assert listing["production"] == base_version
    assert listing["deployments"][0] == {**listing["deployments"][0], "version": base_version, "action": "rollback",
                                         "actor": "ops", "previous_version": version}
    intent, model_id = api.understood(found[0])
    assert intent != NEW_INTENT and model_id == base_model_id
