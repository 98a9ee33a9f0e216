"""CPU per turn of this tree against an earlier commit, measured in turns on the same machine.

    python -m bench.turn_cost_versus [--baseline bfb8b25] [--rounds 3] [--seconds 30]   (make bench-turns-versus)

A VM's speed drifts by a third within minutes, so a figure from another day says little. This checks the
earlier commit out in a temporary worktree (sharing this tree's environments; the bot is trained there
by the baseline's own code), and
runs ``bench.turn_cost``'s closed loop on it and on this tree alternately, ``--rounds`` times each; the
median of each side and their ratio are the result. The default baseline is the commit the turn-cost
issue was measured on. Writes ``bench/results/turn_cost_versus.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.settings import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results"
#: The commit the turn-cost issue measured (Rasa 37.5 + gateway 13.5 ms CPU per turn on its machine).
DEFAULT_BASELINE = "bfb8b25"
_PROBE = "_turn_cost_versus_probe"
_SHARED = (".venv", ".venv-rasa", ".env")


def _worktree(ref: str, into: Path) -> str:
    """Check ``ref`` out at ``into`` with this tree's environments and model; returns its full hash."""
    commit = subprocess.run(["git", "rev-parse", ref], cwd=PROJECT_ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    subprocess.run(["git", "worktree", "add", "--detach", str(into), commit], cwd=PROJECT_ROOT, check=True,
                   capture_output=True)
    for name in _SHARED:
        if (PROJECT_ROOT / name).exists():
            target = into / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            target.symlink_to(PROJECT_ROOT / name)
    (into / "bench").mkdir(exist_ok=True)
    (into / "bench" / "__init__.py").touch()
    # This tree's measurement, run against the other tree's product code.
    shutil.copy(PROJECT_ROOT / "bench" / "turn_cost.py", into / "bench" / f"{_PROBE}.py")
    # The bot trained by the baseline's own code: a model is read by the code that wrote it (the probe's
    # features changed in c97b80e, so older code cannot serve a newer model). The model's own make target,
    # not `make train`: its setup step would re-stamp the shared environments with the baseline's requirements.
    subprocess.run(["make", "models/northwind.tar.gz"], cwd=into, check=True, capture_output=True, timeout=1800)
    return commit


def _measure(tree: Path, module: str, seconds: float, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", module, "--turns", "12", "--seconds", str(seconds), "--json-out", str(out)],
                   cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    result = json.loads(out.read_text())
    cpu = result["cpu_ms_per_turn"]
    return {"rasa": cpu.get("rasa"), "gateway": cpu.get("gateway"),
            "total": round(cpu.get("rasa", 0) + cpu.get("gateway", 0), 1),
            "turns_per_s": result["closed_loop"]["turns_per_s"], "cold_start_s": result["cold_start_s"]}


def run(baseline: str, rounds: int, seconds: float) -> dict[str, Any]:
    """Alternate the baseline's and this tree's closed loops ``rounds`` times."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="switchboard-versus-") as tmp:
        tree = Path(tmp) / "baseline"
        commit = _worktree(baseline, tree)
        runs: list[dict[str, Any]] = []
        try:
            for n in range(rounds):
                for side, where, module in (("baseline", tree, f"bench.{_PROBE}"), ("current", PROJECT_ROOT, "bench.turn_cost")):
                    started = time.monotonic()
                    measured = _measure(where, module, seconds, Path(tmp) / f"{side}-{n}.json")
                    runs.append({"round": n + 1, "side": side, **measured})
                    print(f"round {n + 1} {side}: Rasa {measured['rasa']} + gateway {measured['gateway']} = "
                          f"{measured['total']} ms CPU per turn, {measured['turns_per_s']} turns/s "
                          f"({time.monotonic() - started:.0f} s)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=PROJECT_ROOT, capture_output=True)
    median = {side: {key: statistics.median(r[key] for r in runs if r["side"] == side)
                     for key in ("rasa", "gateway", "total", "turns_per_s", "cold_start_s")}
              for side in ("baseline", "current")}
    return {"baseline": commit[:7], "current": head, "rounds": rounds, "seconds": seconds, "runs": runs,
            "median": median, "ratio": round(median["current"]["total"] / median["baseline"]["total"], 2)}


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "turn_cost_versus.json").write_text(json.dumps(result, indent=1))
    b, c = result["median"]["baseline"], result["median"]["current"]
    lines = [f"# CPU per turn: `{result['current']}` against `{result['baseline']}`", "",
             f"`bench.turn_cost`'s closed loop (8 customers starting 5-turn conversations for {result['seconds']:.0f} s), "
             f"run on each tree alternately, {result['rounds']} times each; medians. Same machine; each tree serves the default bot as its own code trains it.", "",
             "| tree | Rasa ms | gateway ms | Rasa + gateway ms | turns/s | cold start s |", "|---|---:|---:|---:|---:|---:|",
             f"| baseline `{result['baseline']}` | {b['rasa']} | {b['gateway']} | {b['total']} | {b['turns_per_s']} | {b['cold_start_s']} |",
             f"| current `{result['current']}` | {c['rasa']} | {c['gateway']} | {c['total']} | {c['turns_per_s']} | {c['cold_start_s']} |",
             "", f"Current / baseline, Rasa + gateway CPU per turn: **{result['ratio']}**", "", "Every run:", "",
             "| round | tree | Rasa ms | gateway ms | total ms | turns/s |", "|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['round']} | {r['side']} | {r['rasa']} | {r['gateway']} | {r['total']} | {r['turns_per_s']} |"
              for r in result["runs"]]
    (RESULTS / "turn_cost_versus.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turn_cost_versus")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="a commit or ref of this repository")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    write(run(args.baseline, args.rounds, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
