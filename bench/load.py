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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway.settings import PROJECT_ROOT, Settings
from gateway.rasa_cli import RASA_BIN, rasa_cli_env
from gateway.stack import free_port, scratch_settings

RESULTS = PROJECT_ROOT / "bench" / "results"
TROUBLE = "having trouble"
SWITCHBOARD_SCRIPT = ["hi there", "where is my order A1234?", "how long do refunds take?"]
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

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 1)

    def to_json(self) -> dict[str, Any]:
        total = self.turns + self.errors
        return {"concurrency": self.concurrency, "duration_s": round(self.duration_s, 1), "turns": self.turns,
                "errors": self.errors, "conversations": self.conversations,
                "throughput_turns_per_s": round(self.turns / self.duration_s, 2) if self.duration_s else 0,
                "error_rate": round(self.errors / total, 4) if total else 0.0,
                "p50_ms": self.percentile(50), "p95_ms": self.percentile(95), "p99_ms": self.percentile(99),
                "error_kinds": dict(self.error_kinds)}


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
    ending = "I want to talk to a person" if rng.random() < 0.1 else "thanks, that's all"
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


def run_embedded(levels: list[int], duration_s: float, think_s: float, workdir: Path) -> list[dict[str, Any]]:
    from gateway.stack import Stack

    stack = Stack(bench_settings(workdir / "embedded"), log_dir=workdir / "embedded" / "logs")
    stack.start(progress=lambda line: console.print(f"[embedded] {line}"))
    try:
        return measure("embedded", stack.settings.gateway_url, levels, duration_s, think_s, switchboard_turn,
                       switchboard_script, stack.settings.demo_widget_key)
    finally:
        stack.stop()


def run_production(levels: list[int], duration_s: float, think_s: float, workdir: Path) -> list[dict[str, Any]]:
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
        return measure("production", stack.settings.gateway_url, levels, duration_s, think_s, switchboard_turn,
                       switchboard_script, stack.settings.demo_widget_key)
    finally:
        stack.stop()
        _drop_bench_resources(gateway_db, tracker_db, settings.broker_url or "", settings.broker_queue)


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


def svg_chart(results: dict[str, list[dict[str, Any]]]) -> str:
    """Latency p50 (solid) and p95 (dashed) by concurrency, one colour per system; log-scaled milliseconds."""
    import math

    colours = {"embedded": "#2f5bea", "production": "#16a085", "rasa-init": "#d35400"}
    w, h, pad = 720, 360, 60
    levels = sorted({r["concurrency"] for rows in results.values() for r in rows})
    values = [r[k] for rows in results.values() for r in rows for k in ("p50_ms", "p95_ms") if r.get(k)]
    lo, hi = math.log10(max(1.0, min(values or [1.0]))), math.log10(max(values or [10.0]) * 1.2)
    hi = max(hi, lo + 1)

    def x(level: int) -> float:
        return pad + levels.index(level) * (w - 2 * pad) / max(1, len(levels) - 1)

    def y(ms: float) -> float:
        return h - pad - (math.log10(max(ms, 1.0)) - lo) / (hi - lo) * (h - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
             f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">Turn latency by concurrent conversations '
             '(p50 solid, p95 dashed; log scale)</text>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>']
    for level in levels:
        parts.append(f'<text x="{x(level)}" y="{h - pad + 18}" text-anchor="middle">{level}</text>')
    for exponent in range(int(lo), int(math.ceil(hi)) + 1):
        ms = 10 ** exponent
        if lo <= exponent <= hi:
            parts.append(f'<line x1="{pad}" y1="{y(ms):.1f}" x2="{w - pad}" y2="{y(ms):.1f}" stroke="#eee"/>'
                         f'<text x="{pad - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:g} ms</text>')
    for i, (name, rows) in enumerate(results.items()):
        colour = colours.get(name, "#555")
        for key, dash in (("p50_ms", ""), ("p95_ms", ' stroke-dasharray="6 4"')):
            points = " ".join(f"{x(r['concurrency']):.1f},{y(r[key]):.1f}" for r in rows if r.get(key))
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{w - pad - 150}" y="{40 + 16 * i}" fill="{colour}">■ {name}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">concurrent conversations</text></svg>')
    return "\n".join(parts)


#: What every run's numbers mean (the same machine carries all processes of each system).
NOTES = (
    "2 CPU cores carry everything in each system: the production topology's two Rasa and two gateway replicas "
    "share them with PostgreSQL, Redis, RabbitMQ, the log consumer and two proxies, so it adds no capacity "
    "here; it shows what the extra hops cost.",
    "Past saturation, turns wait in the gateway (at most 8 per gateway process are in Rasa at once, "
    "`SWITCHBOARD_RASA_MAX_IN_FLIGHT`), so an overloaded stack answers late instead of with errors.",
    "rasa-init answers fixed small talk with DIET and no custom action, knowledge base, log or handoff: "
    "the floor of what Rasa itself costs on this machine, not a like-for-like bot.",
)

#: Saturation throughput of the embedded stack before the turn-cost work (load.md of 0645c14, 50 at once).
BEFORE_TURNS_PER_S = 16.63


def targets_section(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The turn-cost issue's targets, read off this run (only the ones whose systems ran)."""
    def at(name: str, level: int) -> dict[str, Any] | None:
        return next((r for r in results.get(name, []) if r["concurrency"] == level), None)

    def best(name: str) -> float:
        return max((r["throughput_turns_per_s"] for r in results.get(name, [])), default=0.0)

    rows = []
    if "embedded" in results:
        ours = best("embedded")
        rows.append(("saturation throughput ≥ 2 × before", f"{ours} vs {2 * BEFORE_TURNS_PER_S:.1f} turns/s",
                     ours >= 2 * BEFORE_TURNS_PER_S))
        if "rasa-init" in results:
            rows.append(("saturation throughput ≥ rasa-init's", f"{ours} vs {best('rasa-init')} turns/s",
                         ours >= best("rasa-init")))
            mine, theirs = at("embedded", 50), at("rasa-init", 50)
            if mine and theirs:
                rows.append(("p95 at 50 conversations ≤ 2 × rasa-init's", f"{mine['p95_ms']} vs {2 * theirs['p95_ms']:.0f} ms",
                             mine["p95_ms"] <= 2 * theirs["p95_ms"]))
        mine, prod = at("embedded", 10), at("production", 10)
        if mine and prod:
            rows.append(("production no worse than embedded at 10 (p95)", f"{prod['p95_ms']} vs {mine['p95_ms']} ms",
                         prod["p95_ms"] <= mine["p95_ms"]))
    rows += _turn_cost_rows()
    if not rows:
        return []
    return ["## Targets", "", "| target | this run | status |", "|---|---|---|",
            *[f"| {name} | {figure} | {'met' if ok else 'missed'} |" for name, figure, ok in rows], ""]


def _turn_cost_rows() -> list[tuple[str, str, bool]]:
    """The issue's other targets, from the turn-cost benchmarks' latest results (named as such)."""
    rows: list[tuple[str, str, bool]] = []
    cost = RESULTS / "turn_cost.json"
    if cost.is_file():
        turn = json.loads(cost.read_text())
        growth = turn["growth_190_200_over_1_11"]
        rows.append(("latency of turns 190-200 ≤ 1.2 × turns 1-11 (turn_cost.md)", f"{growth}×", growth <= 1.2))
        rows.append(("services started (trained model present) to the first answer ≤ 20 s (turn_cost.md)", f"{turn['cold_start_s']} s",
                     turn["cold_start_s"] <= 20))
    versus = RESULTS / "turn_cost_versus.json"
    if versus.is_file():
        vs = json.loads(versus.read_text())
        rows.append((f"CPU per turn (Rasa + gateway) halved against `{vs['baseline']}` (turn_cost_versus.md)",
                     f"{vs['median']['current']['total']} vs {vs['median']['baseline']['total']} ms ({vs['ratio']}×)",
                     vs["ratio"] <= 0.5))
    return rows


def _errors_cell(row: dict[str, Any]) -> str:
    """The error count, with what the errors were (``1 (trouble 1)``)."""
    kinds = row.get("error_kinds") or {}
    return f"{row['errors']} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})" if kinds else str(row["errors"])


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Load benchmark", "",
             f"Measured on commit `{report['commit']}` on {report['machine']}, {report['date']}; "
             f"{report['duration_s']:.0f} s per level after a 5 s warm-up, think time {report['think_s']} s (±50 %).",
             "", "Switchboard conversations: greeting, order status, a help-centre question, then thanks (or, one in "
             "ten, a request for a person). rasa-init: `rasa init`'s bot with Rasa's default pipeline over the REST "
             "channel (hello, I am sad, yes, bye): no gateway, log, knowledge base or handoff.", "",
             "| system | concurrent | turns/s | p50 ms | p95 ms | p99 ms | errors | error rate | conversations |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows in report["results"].items():
        for r in rows:
            lines.append(f"| {name} | {r['concurrency']} | {r['throughput_turns_per_s']} | {r['p50_ms']} | {r['p95_ms']} "
                         f"| {r['p99_ms']} | {_errors_cell(r)} | {r['error_rate'] * 100:.2f} % | {r['conversations']} |")
    lines += ["", "![latency by concurrency](load.svg)", ""]
    lines += targets_section(report["results"])
    lines += ["", "CPU per turn by process, latency by turn index in a 200-turn conversation and the cold start "
              "are in [turn_cost.md](turn_cost.md) (`make bench-load` runs `bench.turn_cost` first).", ""]
    lines += ["## Notes", "", *[f"- {n}" for n in NOTES], ""]
    if report.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in report["notes"]], ""]
    return "\n".join(lines)


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
    runners = {"embedded": run_embedded, "production": run_production, "rasa-init": run_rasa_init}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True).stdout.strip()
    report: dict[str, Any] = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "levels": levels,
                              "duration_s": args.duration, "think_s": args.think,
                              "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
                              "results": {}}
    with tempfile.TemporaryDirectory(prefix="switchboard-load-") as tmp:
        for name in args.systems.split(","):
            report["results"][name] = runners[name](levels, args.duration, args.think, Path(tmp))
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
