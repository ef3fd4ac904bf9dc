"""Figures out of the raw runs: medians, ours/baseline ratios, the issue's targets, and markdown."""

from __future__ import annotations

import statistics
from typing import Any

MIB = 2**20

# The targets of issue 4, on a 2-core machine running server, database and load generator.
TARGET_GET_RATIO = 0.75  # get_agent_c32, ours/baseline requests/s
TARGET_GET_P99_MS = 25.0  # get_agent_c8
TARGET_LIST_RATIO = 0.6  # list_c32
TARGET_CREATE_RPS = 400.0  # create_c16
TARGET_RSS_MIB = 120.0  # per worker
TARGET_GROWTH = 0.05  # between the memory marks


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": _median([r["rps"] for r in runs]),
        "p50_ms": _median([r["p50_ms"] for r in runs]),
        "p99_ms": _median([r["p99_ms"] for r in runs]),
        "errors": sum(r["non2xx"] + r["socket_errors"] for r in runs),
        "cpu_ms": _median([r.get("cpu_ms_per_request", 0.0) for r in runs]),
        "rss_peak_mib": max((max(r["rss_peak"] or [0]) for r in runs), default=0) / MIB,
        "rss_peak_total_mib": max((sum(r["rss_peak"]) for r in runs), default=0) / MIB,
    }


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    memory = results.get("memory") or {"workers": None}
    for block in results["workers"]:
        scenarios: dict[str, Any] = {}
        for name, scenario in block["scenarios"].items():
            entry = {
                "title": scenario["title"],
                "connections": scenario["connections"],
                **{side: _summarize_runs(runs) for side, runs in scenario["runs"].items()},
            }
            if "baseline" in scenario["runs"]:
                # Per round, then the median: each ratio compares runs made moments apart.
                pairs = zip(scenario["runs"]["ours"], scenario["runs"]["baseline"], strict=True)
                ratios = [o["rps"] / b["rps"] for o, b in pairs if b["rps"]]
                entry["ratios"] = ratios
                entry["ratio"] = _median(ratios)
                base_cpu = entry["baseline"]["cpu_ms"]
                entry["cpu_ratio"] = (
                    base_cpu / entry["ours"]["cpu_ms"] if entry["ours"]["cpu_ms"] else 0
                )
            scenarios[name] = entry
        summary[str(block["workers"])] = {
            "scenarios": scenarios,
            "targets": _targets(
                scenarios, memory if memory["workers"] == block["workers"] else None
            ),
        }
    return summary


def _targets(scenarios: dict[str, Any], memory: dict[str, Any] | None) -> list[dict[str, Any]]:
    targets = []

    def add(name: str, value: float | None, goal: str, met: bool | None) -> None:
        targets.append({"target": name, "value": value, "goal": goal, "met": met})

    get = scenarios.get("get_agent_c32")
    if get:
        add("GET agent c32, ours/baseline", get.get("ratio"), f">= {TARGET_GET_RATIO}",
            get.get("ratio", 0) >= TARGET_GET_RATIO)  # fmt: skip
    get8 = scenarios.get("get_agent_c8")
    if get8:
        p99 = get8["ours"]["p99_ms"]
        add("GET agent c8, p99 ms", p99, f"<= {TARGET_GET_P99_MS}", p99 <= TARGET_GET_P99_MS)
    listing = scenarios.get("list_c32")
    if listing:
        add("GET list c32, ours/baseline", listing.get("ratio"), f">= {TARGET_LIST_RATIO}",
            listing.get("ratio", 0) >= TARGET_LIST_RATIO)  # fmt: skip
    deep = scenarios.get("list_deep_c32")
    if listing and deep:
        # Within one dataset: the cross-size target (1M vs 1k agents) compares two runs' p50.
        depth = (
            deep["ours"]["p50_ms"] / listing["ours"]["p50_ms"] if listing["ours"]["p50_ms"] else 0
        )
        add("deep page p50 / first page p50", depth, "<= 1.25 (same run)", depth <= 1.25)
    create = scenarios.get("create_c16")
    if create:
        rps = create["ours"]["rps"]
        add("POST agent c16, req/s", rps, f">= {TARGET_CREATE_RPS:.0f}, 0 errors",
            rps >= TARGET_CREATE_RPS and create["ours"]["errors"] == 0)  # fmt: skip
    peak = max((s["ours"]["rss_peak_mib"] for s in scenarios.values()), default=0.0)
    add("RSS per worker, peak MiB", peak, f"<= {TARGET_RSS_MIB:.0f}", peak <= TARGET_RSS_MIB)
    if memory:
        marks = memory["readings"]
        growth = memory["growth"]
        span = f"{marks[0]['requests']:,} -> {marks[-1]['requests']:,} requests"
        add(f"RSS growth {span}", growth, f"< {TARGET_GROWTH:.0%}", growth < TARGET_GROWTH)
    errors = sum(
        s[side]["errors"] for s in scenarios.values() for side in ("ours", "baseline") if side in s
    )
    add("non-2xx + socket errors", errors, "0", errors == 0)
    return targets


def failures(results: dict[str, Any]) -> list[str]:
    """Requests that failed: what makes the run (and the smoke test in CI) fail."""
    found = []
    for block in results["workers"]:
        for name, scenario in block["scenarios"].items():
            for side, runs in scenario["runs"].items():
                for run in runs:
                    if run["non2xx"] or run["socket_errors"]:
                        found.append(
                            f"{block['workers']} worker(s), {name}, {side}: "
                            f"{run['non2xx']} non-2xx, {run['socket_errors']} socket errors"
                        )
    memory = results.get("memory")
    if memory and memory["errors"]:
        found.append(f"{memory['workers']} worker(s), memory: {memory['errors']} errors")
    return found


HEADER = (
    "| scenario | conns | req/s | p50 ms | p99 ms | errors | baseline req/s "
    "| baseline p50 / p99 ms | ours/baseline (per round) | CPU ms/req ours / baseline "
    "| RSS peak MiB (per worker) |"
)


def _mib(sizes: list[int]) -> str:
    return "+".join(f"{s / MIB:.0f}" for s in sizes) if sizes else "-"


def markdown(results: dict[str, Any]) -> str:
    options, machine = results["options"], results["machine"]
    lines = [
        f"# Benchmark run {results['started_at']} (commit {results['commit']})",
        "",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; load average {_loads(machine['load_average'])} before, "
        f"{_loads(results['load_average_after'])} after.",
        f"- Database: {results['database']}; {options['agents']:,} agents per org, 2 orgs, "
        "2 numbers per agent.",
        f"- {options['rounds']} round(s) of {options['duration']:.0f} s per scenario and server, "
        "ours and the baseline alternating; figures are medians over the rounds, the ratio the "
        "median of per-round ratios.",
        "",
    ]
    for block in results["workers"]:
        workers = block["workers"]
        summary = results["summary"][str(workers)]
        lines += [
            f"## {workers} worker(s)",
            "",
            HEADER,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, entry in summary["scenarios"].items():
            ours, base = entry["ours"], entry.get("baseline")
            run = block["scenarios"][name]["runs"]["ours"]
            peak: list[int] = max((r["rss_peak"] for r in run), key=sum, default=[])
            lines.append(
                f"| {entry['title']} | {entry['connections']} | {ours['rps']:.0f} | "
                f"{ours['p50_ms']:.2f} | {ours['p99_ms']:.2f} | {ours['errors']} | "
                + (
                    f"{base['rps']:.0f} | {base['p50_ms']:.2f} / {base['p99_ms']:.2f} | "
                    f"{entry['ratio']:.2f} ({', '.join(f'{r:.2f}' for r in entry['ratios'])}) | "
                    f"{ours['cpu_ms']:.2f} / {base['cpu_ms']:.2f} | "
                    if base
                    else f"- | - | - | {ours['cpu_ms']:.2f} / - | "
                )
                + f"{_mib(peak)} |"
            )
        idle = block.get("rss_idle", {})
        lines += ["", f"Idle RSS MiB per worker: ours {_mib(idle.get('ours', []))}, "
                  f"baseline {_mib(idle.get('baseline', []))}.", ""]  # fmt: skip
        memory = results.get("memory")
        if memory and memory["workers"] == workers:
            readings = ", ".join(
                f"{r['requests']:,} requests: {_mib(r['rss'])}" for r in memory["readings"]
            )
            lines += [
                f"Memory (a fresh server, mixed reads at 16 connections), RSS MiB after "
                f"{readings}; growth {memory['growth']:+.1%}.",
                "",
            ]
        lines += ["| target | value | goal | met |", "|---|---:|---|---|"]
        for target in summary["targets"]:
            value = target["value"]
            shown = (
                "-"
                if value is None
                else (f"{value:.3g}" if isinstance(value, float) else str(value))
            )
            met = "yes" if target["met"] else "NO"
            lines.append(f"| {target['target']} | {shown} | {target['goal']} | {met} |")
        lines.append("")
    return "\n".join(lines)


def _loads(loads: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in loads)
