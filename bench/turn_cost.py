"""What one turn costs: by position in a long conversation, in CPU per process, and from a cold start.

    python -m bench.turn_cost [--turns 200] [--repeats 3] [--conversations 8] [--rounds 5] [--seconds 30]
    (make bench-turns)

On the embedded stack (started here on free ports, rate limits raised):

* cold start: from starting the processes (trained model present) to the first answered turn;
* latency by turn index: ``--repeats`` conversations of ``--turns`` turns, one turn at a time, through the
  HTTP API; each index's latency is the median over the conversations (one turn swings by half with the VM);
* CPU per turn: ``--conversations`` customers, each starting conversations of ``--rounds`` turns one after
  another for ``--seconds`` (a closed loop); the CPU seconds
  each process (Rasa, gateway, action server) spent, divided by the turns.

Writes ``bench/results/turn_cost.{json,md}`` and ``turn_cost_by_index.svg``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import PROJECT_ROOT
from gateway.stack import Stack, scratch_settings

RESULTS = PROJECT_ROOT / "bench" / "results"
#: A realistic mix of a customer's messages (greeting, questions, order status, thanks). Eleven of
#: them, so that every 11-turn window the report compares (turns 1-11 against 190-200) holds each
#: message exactly once: with eight, the two windows held different mixes of cheap and expensive
#: messages and their ratio measured the mix (1.29×) while each message's own latency was flat.
SCRIPT = ["hello", "where is my order A1234?", "how long do refunds take?", "do you sell gift cards?",
          "thanks", "can I change my delivery address?", "what payment methods do you take?", "ok bye",
          "are you a bot?", "how much does shipping cost?", "do you have a shop in Berlin?"]
#: Turns per compared window: one of each message.
WINDOW = len(SCRIPT)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants, living or waited for.

    The action server is Sanic's worker manager with the worker as a child process: the child's CPU
    shows in the parent's counters only once it exits, so living descendants are read one by one.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    ticks, total, todo = os.sysconf("SC_CLK_TCK"), 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += sum(int(v) for v in _stat(current)[11:15])
        except (OSError, IndexError, ValueError):
            continue
        todo += children.get(current, [])
    return total / ticks


def process_cpu(stack: Stack) -> dict[str, float]:
    return {m.name: cpu_seconds(m.process.pid) for m in stack.processes if m.process is not None}


class Customer:
    """One conversation through the gateway's HTTP API."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.conversation: dict[str, str] | None = None

    def say(self, text: str) -> float:
        body: dict[str, Any] = {"text": text}
        headers = {}
        if self.conversation:
            body["conversation_id"] = self.conversation["conversation_id"]
            headers["X-Conversation-Token"] = self.conversation["conversation_token"]
        started = time.perf_counter()
        response = self.client.post("/api/v1/messages", json=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or not response.json().get("replies"):
            raise RuntimeError(f"turn failed: {response.status_code} {response.text[:200]}")
        data = response.json()
        self.conversation = {"conversation_id": data["conversation_id"], "conversation_token": data["conversation_token"]}
        return elapsed


def run(turns: int, conversations: int, rounds: int, loop_s: float = 30.0, repeats: int = 3) -> dict[str, Any]:
    """Start the stack, measure, stop it."""
    with tempfile.TemporaryDirectory(prefix="switchboard-turns-") as tmp:
        settings = scratch_settings(Path(tmp), rate_ip_per_min=100000, rate_ip_burst=10000,
                                    rate_conversation_per_min=100000, rate_conversation_burst=10000,
                                    rate_new_conversations_per_min=100000)
        stack = Stack(settings, log_dir=Path(tmp) / "logs")
        started = time.monotonic()
        stack.start(timeout_s=300, progress=lambda line: None)
        try:
            headers = {"X-Widget-Key": settings.demo_widget_key}
            with httpx.Client(base_url=settings.gateway_url, timeout=120, headers=headers) as client:
                Customer(client).say("hello")
                cold_start_s = time.monotonic() - started
                warm = Customer(client)  # first use of each path (help centre, order lookup) out of the way
                for text in SCRIPT:
                    warm.say(text)
                print(f"cold start to the first answer: {cold_start_s:.1f} s", flush=True)
                # Several long conversations, one after another: a single turn's latency swings by half
                # with the VM, so each index is the median over the repeats.
                runs: list[list[float]] = []
                for repeat in range(repeats):
                    long, latencies = Customer(client), []
                    for n in range(turns):
                        latencies.append(long.say(SCRIPT[n % len(SCRIPT)]))
                        if (n + 1) % 50 == 0:
                            print(f"conversation {repeat + 1}, turn {n + 1}: {statistics.median(latencies[-10:]):.0f} ms "
                                  "(median of the last 10)", flush=True)
                    runs.append(latencies)
                by_index = [round(statistics.median(values), 1) for values in zip(*runs)]
            before = process_cpu(stack)
            done = 0

            stop_at = time.monotonic() + loop_s

            def conversation(_: int) -> int:
                # New conversations of ``rounds`` turns until the time is up: session starts count too.
                said = 0
                with httpx.Client(base_url=settings.gateway_url, timeout=120, headers=headers) as own:
                    while time.monotonic() < stop_at:
                        customer = Customer(own)
                        for n in range(rounds):
                            customer.say(SCRIPT[n % len(SCRIPT)])
                        said += rounds
                return said

            wall = time.monotonic()
            with ThreadPoolExecutor(max_workers=conversations) as pool:
                done = sum(pool.map(conversation, range(conversations)))
            wall = time.monotonic() - wall
            after = process_cpu(stack)
        finally:
            stack.stop()
    cpu = {name: round((after[name] - before[name]) * 1000 / done, 1) for name in before}
    window = lambda a, b: round(statistics.median(by_index[a:b]), 1)  # noqa: E731
    # Each message's latency in the first window against the last (one turn each per conversation).
    by_message = {text: {"first": by_index[i], "last": by_index[turns - WINDOW + (i - turns) % WINDOW]}
                  for i, text in enumerate(SCRIPT) if turns >= 2 * WINDOW}
    return {"by_message_ms": by_message, "turns": turns, "repeats": repeats, "cold_start_s": round(cold_start_s, 1), "latency_by_index_ms": by_index,
            "median_ms": {label: window(a, b) for label, a, b in
                          (("1-11", 0, WINDOW), ("50-60", 49, 49 + WINDOW), ("100-110", 99, 99 + WINDOW)) if b <= turns}
            | {f"{turns - WINDOW + 1}-{turns}": window(turns - WINDOW, turns)},
            "growth_190_200_over_1_11": round(window(turns - WINDOW, turns) / window(0, WINDOW), 2),
            "cpu_ms_per_turn": cpu, "closed_loop": {"conversations": conversations, "turns": done, "seconds": round(wall, 1),
                                                    "turns_per_s": round(done / wall, 1)}}


def svg(by_index: list[float]) -> str:
    """Latency by turn index as a small line chart."""
    w, h, pad = 640, 240, 40
    top = max(by_index) * 1.1
    points = " ".join(f"{pad + i * (w - 2 * pad) / max(1, len(by_index) - 1):.1f},"
                      f"{h - pad - v * (h - 2 * pad) / top:.1f}" for i, v in enumerate(by_index))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">'
            f'<rect width="{w}" height="{h}" fill="#fff"/>'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#999"/>'
            f'<text x="{pad}" y="{pad - 8}">latency ms (max {top / 1.1:.0f})</text>'
            f'<text x="{w - pad}" y="{h - 12}" text-anchor="end">turn {len(by_index)}</text>'
            f'<polyline fill="none" stroke="#2f5bea" stroke-width="1.5" points="{points}"/></svg>\n')


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "turn_cost.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "turn_cost_by_index.svg").write_text(svg(result["latency_by_index_ms"]))
    m = result["median_ms"]
    cpu = result["cpu_ms_per_turn"]
    lines = ["# Turn cost (embedded stack, one run)", "",
             f"- Cold start (processes started, trained model present) to the first answer: **{result['cold_start_s']} s**",
             f"- {result.get('repeats', 1)} conversations of {result['turns']} turns, one at a time (each turn index: "
             "the median over them), median latency: "
             + ", ".join(f"turns {label} **{value} ms**" for label, value in m.items())
             + f" ({result['growth_190_200_over_1_11']}× turns 1-11 for the last)",
             f"- Closed loop, {result['closed_loop']['conversations']} customers starting 5-turn conversations for "
             f"{result['closed_loop'].get('seconds', '?')} s: {result['closed_loop']['turns']} turns, "
             f"{result['closed_loop']['turns_per_s']} turns/s", "",
             "| process | CPU ms per turn |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in cpu.items()]
    lines += [f"| Rasa + gateway | {round(cpu.get('rasa', 0) + cpu.get('gateway', 0), 1)} |", "",
              "![latency by turn index](turn_cost_by_index.svg)"]
    if result.get("by_message_ms"):
        last = f"turns {result['turns'] - WINDOW + 1}-{result['turns']}"
        lines += ["", f"Each message of the script, turns 1-{WINDOW} against {last} (median over the conversations):",
                  "", f"| message | turns 1-{WINDOW} ms | {last} ms | ratio |", "|---|---:|---:|---:|"]
        lines += [f"| {text} | {v['first']} | {v['last']} | {v['last'] / v['first']:.2f} |"
                  for text, v in result["by_message_ms"].items()]
    (RESULTS / "turn_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turn_cost")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the closed loop")
    parser.add_argument("--repeats", type=int, default=3, help="long conversations; each index is their median")
    parser.add_argument("--json-out", type=Path, help="write the result here only (bench.turn_cost_versus)")
    args = parser.parse_args(argv)
    result = run(args.turns, args.conversations, args.rounds, args.seconds, args.repeats)
    if args.json_out:
        args.json_out.write_text(json.dumps(result))
    else:
        write(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
