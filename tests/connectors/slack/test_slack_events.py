"""Slack customers: signed events, one reply per event, threads, slash command, rate limits."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Conversation, Message
from tests.connectors.slack.conftest import TEAM, dm, new_ts, post_action, post_event, post_form
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, FakeSlackApi
from tests.gateway.conftest import ScriptedDialogueEngine


def _texts(fake: FakeSlackApi, channel: str) -> list[str]:
    return [c.args.get("text") for c in fake.of("chat.postMessage") if c.args.get("channel") == channel]


def test_a_signed_direct_message_gets_one_bot_reply(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                    engine: ScriptedDialogueEngine) -> None:
    response = post_event(slack_client, dm("U1", "where is my order?"))
    assert response.status_code == 200
    calls = fake_slack.wait_for("chat.postMessage", 2, channel="D0000001")
    assert [c.args["text"] for c in calls] == ["echo: where is my order?", "more?"]
    assert all(c.token == BOT_TOKEN for c in calls)
    # Rasa's buttons become Block Kit quick replies.
    actions = [b for b in calls[1].args["blocks"] if b["type"] == "actions"]
    assert actions[0]["elements"][0]["value"] == "/affirm"
    assert [call[1] for call in engine.calls] == ["where is my order?"]
    assert engine.calls[0][2]["channel"] == "slack"


def test_a_mention_in_a_channel_is_answered_in_its_thread(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                          engine: ScriptedDialogueEngine) -> None:
    ts = new_ts()
    post_event(slack_client, {"type": "app_mention", "channel": "CPUB0001", "user": "U2", "ts": ts,
                              "text": f"<@{BOT_USER_ID}> do you ship abroad?"})
    calls = fake_slack.wait_for("chat.postMessage", 2, channel="CPUB0001")
    assert {c.args["thread_ts"] for c in calls} == {ts}
    assert engine.calls[0][1] == "do you ship abroad?"
    # A follow-up in that thread, without a mention, continues the same conversation.
    post_event(slack_client, {"type": "message", "channel": "CPUB0001", "channel_type": "channel", "user": "U2",
                              "ts": new_ts(), "thread_ts": ts, "text": "and to Norway?"})
    fake_slack.wait_for("chat.postMessage", 4, channel="CPUB0001")
    assert engine.calls[1][0] == engine.calls[0][0]
    # A channel message outside any conversation thread is not for the bot.
    post_event(slack_client, {"type": "message", "channel": "CPUB0001", "channel_type": "channel", "user": "U3",
                              "ts": new_ts(), "text": "lunch?"})
    time.sleep(0.5)
    assert len(engine.calls) == 2


def test_wrong_or_stale_signatures_are_refused_and_nothing_runs(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                                engine: ScriptedDialogueEngine,
                                                                sessions: sessionmaker[Session]) -> None:
    wrong = post_event(slack_client, dm("U1", "hello"), secret="not-the-signing-secret-at-all-xx")
    stale = post_event(slack_client, dm("U1", "hello"), timestamp=int(time.time()) - 6 * 60)
    unsigned = slack_client.post("/slack/events", content=b"{}", headers={"Content-Type": "application/json"})
    assert (wrong.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    time.sleep(0.5)
    assert engine.calls == []
    assert fake_slack.of("chat.postMessage") == []
    with sessions() as session:
        assert session.execute(select(Message)).first() is None


def test_the_same_event_delivered_three_times_is_answered_once(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                               engine: ScriptedDialogueEngine) -> None:
    event = dm("U1", "hello there")
    for retry in range(3):
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        assert post_event(slack_client, event, event_id="EvSAME0001", headers=headers).status_code == 200
    fake_slack.wait_for("chat.postMessage", 2, channel="D0000001")
    time.sleep(0.5)
    assert len(engine.calls) == 1
    assert _texts(fake_slack, "D0000001") == ["echo: hello there", "more?"]


def test_a_slow_turn_is_acknowledged_at_once_and_answered_later(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                                engine: ScriptedDialogueEngine) -> None:
    original = engine.send

    async def slow_send(*args, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(5)
        return await original(*args, **kwargs)

    engine.send = slow_send  # type: ignore[method-assign]
    started = time.monotonic()
    response = post_event(slack_client, dm("U1", "take your time"))
    acked_after = time.monotonic() - started
    assert response.status_code == 200
    assert fake_slack.of("chat.postMessage") == []  # the ack did not wait for the turn
    assert acked_after < 3.0  # Slack's deadline
    fake_slack.wait_for("chat.postMessage", 2, channel="D0000001", timeout=20)


def test_rate_limited_posts_are_retried_after_retry_after(slack_client: TestClient, fake_slack: FakeSlackApi) -> None:
    fake_slack.rate_limit["chat.postMessage"] = 1
    post_event(slack_client, dm("U1", "hi"))
    calls = fake_slack.wait_for("chat.postMessage", 3, channel="D0000001")
    assert calls[0].args["text"] == calls[1].args["text"] == "echo: hi"  # the 429, then the retry
    assert calls[1].at - calls[0].at >= 0.9
    assert [c.args["text"] for c in calls[1:]] == ["echo: hi", "more?"]


def test_slash_command_opens_a_conversation(slack_client: TestClient, fake_slack: FakeSlackApi,
                                            engine: ScriptedDialogueEngine,
                                            sessions: sessionmaker[Session]) -> None:
    response = post_form(slack_client, {"command": "/support", "text": "my parcel is late", "user_id": "U7",
                                        "user_name": "sam", "team_id": TEAM, "channel_id": "CPUB0001",
                                        "trigger_id": "tr-slash-1", "response_url": "http://127.0.0.1:9/x"})
    assert response.status_code == 200
    assert "direct message" in response.text
    fake_slack.wait_for("conversations.open", users="U7")
    fake_slack.wait_for("chat.postMessage", 2, channel="D7")
    assert engine.calls[0][1] == "my parcel is late"
    with sessions() as session:
        conversation = session.execute(select(Conversation).where(Conversation.channel == "slack")).scalar_one()
        assert conversation.external_ref == f"{TEAM}:D7"
        assert conversation.customer == {"id": f"slack:{TEAM}:U7", "slack_user": "U7"}


def test_quick_reply_buttons_drive_the_conversation(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                    engine: ScriptedDialogueEngine) -> None:
    post_event(slack_client, dm("U1", "hi"))
    fake_slack.wait_for("chat.postMessage", 2, channel="D0000001")
    post_action(slack_client, "U1", "sb_quick_reply:0", "/affirm", channel="D0000001")
    fake_slack.wait_for("chat.postMessage", 4, channel="D0000001")
    assert [call[1] for call in engine.calls] == ["hi", "/affirm"]
    assert engine.calls[0][0] == engine.calls[1][0]


def test_events_of_a_workspace_that_is_not_installed_run_nothing(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                                 engine: ScriptedDialogueEngine) -> None:
    from tests.connectors.slack.conftest import event_body, sign

    body = event_body(dm("U1", "hello"), team="TOTHER01")
    slack_client.post("/slack/events", content=body, headers={"Content-Type": "application/json", **sign(body)})
    time.sleep(0.5)
    assert engine.calls == [] and fake_slack.of("chat.postMessage") == []


def test_slacks_url_verification_challenge_is_answered(slack_client: TestClient) -> None:
    import json

    from tests.connectors.slack.conftest import sign

    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = slack_client.post("/slack/events", content=body, headers={"Content-Type": "application/json",
                                                                          **sign(body)})
    assert response.status_code == 200
    assert response.json()["challenge"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"


def test_uninstalling_the_app_deletes_the_workspaces_token(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                           engine: ScriptedDialogueEngine, workspaces) -> None:  # type: ignore[no-untyped-def]
    post_event(slack_client, {"type": "app_uninstalled"})
    deadline = time.monotonic() + 10
    while workspaces.get(TEAM) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workspaces.get(TEAM) is None
    post_event(slack_client, dm("U1", "still there?"))
    time.sleep(0.5)
    assert engine.calls == [] and fake_slack.of("chat.postMessage") == []
