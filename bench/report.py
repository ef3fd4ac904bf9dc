"""Figures out of the raw runs: medians, ours/baseline ratios, the issue's targets, and markdown."""

from __future__ import annotations

import statistics
from typing import Any

from bench import edge

MIB = 2**20

# The targets of issue 10, on a 2-core machine running server, database and load generator; the
# ratios are against the in-PostgreSQL baseline (the physical limit), ours as make run serves.
TARGET_GET_RATIO = 0.5  # get_agent_c32, ours/baseline_pg requests/s
TARGET_GET_P99_MS = 15.0  # get_agent_c8
TARGET_LIST_RATIO = 0.4  # list_c32
TARGET_CREATE_RPS = 400.0  # create_c16
TARGET_RSS_MIB = 120.0  # per worker
TARGET_GROWTH = 0.05  # between the memory marks


OURS = ("ours", "ours_warning")
BASELINES = ("baseline", "baseline_pg")


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
            for side in OURS:
                for base in BASELINES:
                    if side in scenario["runs"] and base in scenario["runs"]:
                        # Per round, then the median: each compares runs made moments apart.
                        pairs = zip(scenario["runs"][side], scenario["runs"][base], strict=True)
                        ratios = [o["rps"] / b["rps"] for o, b in pairs if b["rps"]]
                        entry[f"{side}/{base}"] = {"ratios": ratios, "ratio": _median(ratios)}
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

    def ratio(entry: dict[str, Any], pair: str = "ours/baseline_pg") -> float:
        return float(entry.get(pair, {}).get("ratio", 0.0))

    get = scenarios.get("get_agent_c32")
    if get:
        add("GET agent c32, ours/baseline_pg", ratio(get), f">= {TARGET_GET_RATIO}",
            ratio(get) >= TARGET_GET_RATIO)  # fmt: skip
    get8 = scenarios.get("get_agent_c8")
    if get8:
        p99 = get8["ours"]["p99_ms"]
        add("GET agent c8, p99 ms", p99, f"<= {TARGET_GET_P99_MS}", p99 <= TARGET_GET_P99_MS)
    listing = scenarios.get("list_c32")
    if listing:
        add("GET list c32, ours/baseline_pg", ratio(listing), f">= {TARGET_LIST_RATIO}",
            ratio(listing) >= TARGET_LIST_RATIO)  # fmt: skip
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
        s[side]["errors"] for s in scenarios.values() for side in (*OURS, *BASELINES) if side in s
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
    if "edge" in results:
        found += edge.failures(results["edge"])
    return found


HEADER = (
    "| scenario | server | conns | req/s | p50 ms | p99 ms | errors | CPU ms/req "
    "| / baseline (per round) | / baseline_pg (per round) | RSS peak MiB (per worker) |"
)
_NAMES = {
    "ours": "ours (make run: info, metrics)",
    "ours_warning": "ours (log level warning)",
    "baseline": "baseline (asyncpg, Python JSON)",
    "baseline_pg": "baseline_pg (JSON by PostgreSQL)",
}


def _ratio_cell(entry: dict[str, Any], pair: str) -> str:
    found = entry.get(pair)
    if not found:
        return "-"
    return f"{found['ratio']:.2f} ({', '.join(f'{r:.2f}' for r in found['ratios'])})"


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
        "the four servers taking turns to go first; figures are medians over the rounds, each "
        "ratio the median of per-round ratios. Ours runs as make run starts it (log level info: an "
        "access line per request; metrics on), and again at log level warning.",
        "",
    ]
    for block in results["workers"]:
        workers = block["workers"]
        summary = results["summary"][str(workers)]
        lines += [
            f"## {workers} worker(s)",
            "",
            HEADER,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, entry in summary["scenarios"].items():
            for side in (*OURS, *BASELINES):
                if side not in entry:
                    continue
                figures = entry[side]
                run = block["scenarios"][name]["runs"][side]
                peak: list[int] = max((r["rss_peak"] for r in run), key=sum, default=[])
                lines.append(
                    f"| {entry['title']} | {_NAMES[side]} | {entry['connections']} | "
                    f"{figures['rps']:.0f} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | "
                    f"{figures['errors']} | {figures['cpu_ms']:.2f} | "
                    f"{_ratio_cell(entry, f'{side}/baseline')} | "
                    f"{_ratio_cell(entry, f'{side}/baseline_pg')} | {_mib(peak)} |"
                )
        idle = block.get("rss_idle", {})
        shown = ", ".join(f"{side} {_mib(idle.get(side, []))}" for side in (*OURS, *BASELINES))
        lines += ["", f"Idle RSS MiB per worker: {shown}.", ""]
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
    if "edge" in results:
        lines += [*edge.markdown(results["edge"]), ""]
    return "\n".join(lines)


def _loads(loads: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in loads)
