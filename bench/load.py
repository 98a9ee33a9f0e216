"""Load benchmark (``make bench-load``, not part of CI): realistic conversations at 10, 50 and 200 at once.

Three systems, measured in one run on this machine:

* **embedded**: ``make run``'s stack (one gateway, one Rasa, SQLite);
* **production**: ``make run-prod``'s topology (two gateways and two Rasa replicas behind proxies,
  PostgreSQL, Redis lock store and pub/sub, RabbitMQ event broker and log consumer);
* **rasa-init**: raw Rasa 3.6 with its default pipeline (the ``rasa init`` bot, DIET), REST channel:
  what a bare Rasa does with the same hardware, no gateway, no logging, no knowledge base.

Each virtual customer runs a conversation through the public API and starts a new one when it ends:
greeting, order status (custom action against the database), a help-centre question (FAISS + BM25),
thanks; one in ten asks for a person instead of saying thanks (a handoff, which ends the bot's part).
Between turns a customer "reads" for ``think_s`` (±50 %). A turn's latency is the HTTP round trip; an
error is a non-200 answer, a timeout, or the gateway's "having trouble" reply.

The target "production no worse than embedded at 10 conversations" compares two systems measured on a
machine whose speed drifts: at that level both stacks are up and are measured in alternating blocks
(``PAIRED_BLOCKS`` per system, 60 s in all each), the rest of the levels one system at a time.

Writes ``bench/results/load.json``, ``load.md`` and ``load.svg`` (latency percentiles by concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.load_report import RESULTS, markdown, svg_chart
from gateway.settings import PROJECT_ROOT, Settings
from gateway.rasa_cli import RASA_BIN, rasa_cli_env
from gateway.stack import free_port, scratch_settings

TROUBLE = "having trouble"
SWITCHBOARD_SCRIPT = ["hi there", "where is my order A1234?", "how long do refunds take?"]
HANDOFF_TEXT = "I want to talk to a person"
#: What each scripted message exercises, for the latency-by-turn table (rasa-init's are named by their text).
TURN_KINDS = {"hi there": "greeting", "where is my order A1234?": "order status (action)",
              "how long do refunds take?": "help centre", "thanks, that's all": "thanks",
              HANDOFF_TEXT: "handoff"}
RASA_INIT_SCRIPT = ["hello", "I am feeling a bit sad", "yes", "bye"]
console = Console(stderr=True)


@dataclass
class LevelResult:
    """What one concurrency level measured."""

    concurrency: int
    duration_s: float
    turns: int = 0
    errors: int = 0
    conversations: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    by_turn: dict[str, list[float]] = field(default_factory=dict)

    def percentile(self, p: float, latencies: list[float] | None = None) -> float | None:
        values = self.latencies_ms if latencies is None else latencies
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 1)

    def merge(self, other: "LevelResult") -> None:
        """Add another block of the same level (the paired comparison measures in alternating blocks)."""
        self.duration_s += other.duration_s
        self.turns += other.turns
        self.errors += other.errors
        self.conversations += other.conversations
        self.latencies_ms += other.latencies_ms
        for kind, count in other.error_kinds.items():
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + count
        for kind, values in other.by_turn.items():
            self.by_turn.setdefault(kind, []).extend(values)

    def to_json(self) -> dict[str, Any]:
        total = self.turns + self.errors
        return {"concurrency": self.concurrency, "duration_s": round(self.duration_s, 1), "turns": self.turns,
                "errors": self.errors, "conversations": self.conversations,
                "throughput_turns_per_s": round(self.turns / self.duration_s, 2) if self.duration_s else 0,
                "error_rate": round(self.errors / total, 4) if total else 0.0,
                "p50_ms": self.percentile(50), "p95_ms": self.percentile(95), "p99_ms": self.percentile(99),
                "error_kinds": dict(self.error_kinds),
                "by_turn": {kind: {"turns": len(values), "p50_ms": self.percentile(50, values),
                                   "p95_ms": self.percentile(95, values)}
                            for kind, values in self.by_turn.items()}}


#: A turn's outcome: None when the bot answered, else what went wrong (``http_503``, ``trouble``, …).
Turn = Callable[[httpx.AsyncClient, dict[str, Any], str], Awaitable[str | None]]


async def switchboard_turn(client: httpx.AsyncClient, state: dict[str, Any], text: str) -> str | None:
    """One customer message through the gateway's public API; None when the bot answered, else the error."""
    body: dict[str, Any] = {"text": text}
    headers = {"X-Widget-Key": state["key"]}
    if state.get("conversation_id"):
        body["conversation_id"] = state["conversation_id"]
        headers["X-Conversation-Token"] = state["token"]
    response = await client.post("/api/v1/messages", json=body, headers=headers)
    if response.status_code != 200:
        return f"http_{response.status_code}"
    data = response.json()
    state["conversation_id"], state["token"] = data["conversation_id"], data["conversation_token"]
    replies = [r.get("text") or "" for r in data.get("replies", [])]
    if not replies:
        return "no_reply"
    return "trouble" if any(TROUBLE in r for r in replies) else None


async def rasa_turn(client: httpx.AsyncClient, state: dict[str, Any], text: str) -> str | None:
    """One message through Rasa's REST channel; None when it answered, else the error."""
    response = await client.post("/webhooks/rest/webhook", json={"sender": state["sender"], "message": text})
    if response.status_code != 200:
        return f"http_{response.status_code}"
    return None if isinstance(response.json(), list) and bool(response.json()) else "no_reply"


async def run_level(base_url: str, concurrency: int, duration_s: float, think_s: float, turn: Turn,
                    script: Callable[[random.Random], list[str]], key: str, progress: Progress) -> LevelResult:
    """``concurrency`` customers talking for ``duration_s`` (after a warm-up that is not counted)."""
    result = LevelResult(concurrency, duration_s)
    warmup_s = 5.0
    start = time.monotonic()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s
    task = progress.add_task(f"{concurrency:>3} at once", total=duration_s)
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=concurrency + 10)

    async def customer(n: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(n)
        await asyncio.sleep(rng.uniform(0, think_s))  # customers do not all arrive in the same millisecond
        while time.monotonic() < stop_at:
            state: dict[str, Any] = {"key": key, "sender": f"load-{n}-{secrets.token_hex(4)}"}
            counted = time.monotonic() >= measure_from
            for text in script(rng):
                began = time.monotonic()
                try:
                    error = await turn(client, state, text)
                except (httpx.HTTPError, ValueError) as exc:
                    error = f"client_{exc.__class__.__name__}"
                ok = error is None
                ended = time.monotonic()
                if began >= measure_from and ended <= stop_at:
                    if ok:
                        result.turns += 1
                        result.latencies_ms.append((ended - began) * 1000)
                        result.by_turn.setdefault(TURN_KINDS.get(text, text), []).append((ended - began) * 1000)
                    else:
                        result.errors += 1
                        result.error_kinds[error] = result.error_kinds.get(error, 0) + 1
                if not ok or ended >= stop_at:
                    break
                await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
            if counted:
                result.conversations += 1

    async def ticker() -> None:
        while time.monotonic() < stop_at:
            progress.update(task, completed=max(0.0, min(duration_s, time.monotonic() - measure_from)))
            await asyncio.sleep(0.5)
        progress.update(task, completed=duration_s)

    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        await asyncio.gather(ticker(), *(customer(n, client) for n in range(concurrency)))
    return result


def switchboard_script(rng: random.Random) -> list[str]:
    ending = HANDOFF_TEXT if rng.random() < 0.1 else "thanks, that's all"
    return [*SWITCHBOARD_SCRIPT, ending]


def rasa_init_script(_rng: random.Random) -> list[str]:
    return list(RASA_INIT_SCRIPT)


def measure(name: str, base_url: str, levels: list[int], duration_s: float, think_s: float, turn: Turn,
            script: Callable[[random.Random], list[str]], key: str) -> list[dict[str, Any]]:
    """Every level against one running system."""
    results = []
    with Progress(console=console) as progress:
        for level in levels:
            outcome = asyncio.run(run_level(base_url, level, duration_s, think_s, turn, script, key, progress))
            results.append(outcome.to_json())
            console.print(f"{name} @ {level}: {results[-1]}")
    return results


def bench_settings(workdir: Path, **overrides: Any) -> Settings:
    """Settings of a throw-away stack with the per-address limits out of the way (every simulated customer
    comes from 127.0.0.1)."""
    return scratch_settings(workdir, **{
        "demo_widget_key": "wk_bench_northwind", "rate_ip_per_min": 10**6, "rate_ip_burst": 10**5,
        "rate_new_conversations_per_min": 10**6, "rate_conversation_per_min": 10**4,
        "rate_conversation_burst": 10**3, **overrides})


#: The level at which production is compared with embedded, in alternating blocks with both stacks up.
PAIRED_LEVEL = 10
#: Blocks per system of the paired comparison (their order alternates).
PAIRED_BLOCKS = 4

#: A running system: its base URL and widget key.
Target = tuple[str, str]


@contextmanager
def embedded_stack(workdir: Path) -> Iterator[Target]:
    """``make run``'s stack, started for the benchmark and stopped after."""
    from gateway.stack import Stack

    stack = Stack(bench_settings(workdir / "embedded"), log_dir=workdir / "embedded" / "logs")
    stack.start(progress=lambda line: console.print(f"[embedded] {line}"))
    try:
        yield stack.settings.gateway_url, stack.settings.demo_widget_key
    finally:
        stack.stop()


@contextmanager
def production_stack(workdir: Path) -> Iterator[Target]:
    """The production topology on throw-away databases and queue, dropped after."""
    from gateway.production_stack import ProductionStack, ensure_postgres_database

    suffix = secrets.token_hex(3)
    gateway_db = f"postgresql+psycopg://postgres@127.0.0.1:5432/sb_bench_gw_{suffix}"
    tracker_db = f"postgresql+psycopg://postgres@127.0.0.1:5432/sb_bench_tracker_{suffix}"
    for url in (gateway_db, tracker_db):
        ensure_postgres_database(url)
    settings = bench_settings(workdir / "production", database_url=gateway_db, rasa_tracker_url=tracker_db,
                              redis_url="redis://127.0.0.1:6379/0", broker_url="amqp://guest:guest@127.0.0.1:5672/%2F",
                              broker_queue=f"sb_bench_events_{suffix}")
    stack = ProductionStack(settings, log_dir=workdir / "production" / "logs")
    stack.start(progress=lambda line: console.print(f"[production] {line}"))
    try:
        yield stack.settings.gateway_url, stack.settings.demo_widget_key
    finally:
        stack.stop()
        _drop_bench_resources(gateway_db, tracker_db, settings.broker_url or "", settings.broker_queue)


def measure_switchboard(name: str, target: Target, levels: list[int], duration_s: float,
                        think_s: float) -> list[dict[str, Any]]:
    """Every level against one running Switchboard system."""
    url, key = target
    return measure(name, url, levels, duration_s, think_s, switchboard_turn, switchboard_script, key) if levels else []


def measure_paired(targets: dict[str, Target], level: int, duration_s: float, think_s: float,
                   blocks: int = PAIRED_BLOCKS) -> dict[str, dict[str, Any]]:
    """One level against several running systems in alternating blocks (``duration_s`` in all per system),
    so that a machine whose speed drifts during the run weighs on each system alike."""
    pooled = {name: LevelResult(level, 0.0) for name in targets}
    order = list(targets)
    with Progress(console=console) as progress:
        for block in range(blocks):
            for name in order if block % 2 == 0 else reversed(order):
                url, key = targets[name]
                pooled[name].merge(asyncio.run(run_level(url, level, duration_s / blocks, think_s, switchboard_turn,
                                                         switchboard_script, key, progress)))
    results = {name: {**result.to_json(), "paired_blocks": blocks} for name, result in pooled.items()}
    for name, row in results.items():
        console.print(f"{name} @ {level} (paired, {blocks} blocks): {row}")
    return results


def run_switchboard(systems: list[str], levels: list[int], duration_s: float, think_s: float,
                    workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """The embedded stack and the production topology; with both, the paired level is measured with both up."""
    stacks = {"embedded": embedded_stack, "production": production_stack}
    wanted = [name for name in stacks if name in systems]
    if not (set(stacks) <= set(wanted) and PAIRED_LEVEL in levels):
        results = {}
        for name in wanted:
            with stacks[name](workdir) as target:
                results[name] = measure_switchboard(name, target, levels, duration_s, think_s)
        return results
    others = [level for level in levels if level != PAIRED_LEVEL]
    with embedded_stack(workdir) as embedded:
        with production_stack(workdir) as production:
            paired = measure_paired({"embedded": embedded, "production": production}, PAIRED_LEVEL, duration_s, think_s)
            later = measure_switchboard("production", production, others, duration_s, think_s)
        results = {"embedded": [paired["embedded"], *measure_switchboard("embedded", embedded, others, duration_s,
                                                                         think_s)],
                   "production": [paired["production"], *later]}
    return results


def _drop_bench_resources(gateway_db: str, tracker_db: str, broker_url: str, queue: str) -> None:
    import pika
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
        for url in (gateway_db, tracker_db):
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    connection.channel().queue_delete(queue)
    connection.close()


def run_rasa_init(levels: list[int], duration_s: float, think_s: float, workdir: Path) -> list[dict[str, Any]]:
    """Raw Rasa: ``rasa init`` (trains the default bot with DIET), then ``rasa run`` with the REST channel."""
    project = workdir / "rasa-init"
    project.mkdir(parents=True, exist_ok=True)
    env = rasa_cli_env()
    console.print("[rasa-init] rasa init --no-prompt (trains the default bot)…")
    with (project / "init.log").open("wb") as log:
        subprocess.run([str(RASA_BIN), "init", "--no-prompt", "--init-dir", str(project)], cwd=project, env=env,
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    port = free_port()
    with (project / "run.log").open("wb") as log:
        server = subprocess.Popen([str(RASA_BIN), "run", "--port", str(port), "--interface", "127.0.0.1"],
                                  cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rasa run did not come up: see " + str(project / "run.log"))
            time.sleep(1)
        return measure("rasa-init", f"http://127.0.0.1:{port}", levels, duration_s, think_s, rasa_turn,
                       rasa_init_script, "")
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="10,50,200")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured per level")
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds a customer reads between turns")
    parser.add_argument("--systems", default="embedded,production,rasa-init")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: write load.md again from load.json and the current turn-cost results")
    args = parser.parse_args(argv)
    if args.render:
        (RESULTS / "load.md").write_text(markdown(json.loads((RESULTS / "load.json").read_text())))
        console.print(f"wrote {RESULTS / 'load.md'} from load.json")
        return 0
    levels = [int(v) for v in args.levels.split(",")]
    systems = args.systems.split(",")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True).stdout.strip()
    report: dict[str, Any] = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "levels": levels,
                              "duration_s": args.duration, "think_s": args.think,
                              "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
                              "results": {}}
    with tempfile.TemporaryDirectory(prefix="switchboard-load-") as tmp:
        report["results"].update(run_switchboard(systems, levels, args.duration, args.think, Path(tmp)))
        if "rasa-init" in systems:
            report["results"]["rasa-init"] = run_rasa_init(levels, args.duration, args.think, Path(tmp))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "load.svg").write_text(svg_chart(report["results"]) + "\n")
    (RESULTS / "load.md").write_text(markdown(report))
    table = Table(title=f"load benchmark ({commit})")
    for column in ("system", "concurrent", "turns/s", "p50 ms", "p95 ms", "p99 ms", "error rate"):
        table.add_column(column)
    for name, rows in report["results"].items():
        for r in rows:
            table.add_row(name, str(r["concurrency"]), str(r["throughput_turns_per_s"]), str(r["p50_ms"]),
                          str(r["p95_ms"]), str(r["p99_ms"]), f"{r['error_rate'] * 100:.2f} %")
    Console().print(table)
    console.print(f"wrote {RESULTS / 'load.md'}, load.json, load.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
