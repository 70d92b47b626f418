"""Turn `bench/run`'s results into a table (stdout, Markdown) and a PNG of the latencies.

    .venv/bin/python bench/plot.py bench/results

Reads each scenario's JSON lines (one per round and target, from ../shared/bench) and its
pooled latency samples; draws one panel per scenario with the peer's and Consult's
latency distributions (share of operations done within x ms, log scale).
"""

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

SCENARIOS = {
    "end-rate": "End → both parties, 200 ends/s",
    "end-burst": "End → both parties, all at once",
    "chat": "chat:send → both parties, 2,000/s",
}
COLOURS = {"peer": "#6b7280", "consult": "#b45309"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(folder: Path) -> list[str]:
    lines = [
        "| scenario | target | p50 ms | p90 ms | p99 ms | max ms | CPU ms/op | RSS MB | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, title in SCENARIOS.items():
        path = folder / f"{name}.jsonl"
        if not path.exists():
            continue
        runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for target in ("peer", "consult"):
            mine = [r for r in runs if r["target"] == target]
            if not mine:
                continue

            def med(key, rows=mine):
                return statistics.median(r[key] for r in rows)

            cpu_per_op = statistics.median(
                1000 * r["serverCpuS"] / max(1, r["count"]) for r in mine
            )
            errors = sum(r["errors"] + r["timedOut"] + r["dupes"] + r["invalid"] for r in mine)
            lines.append(
                f"| {title} | {target} | {med('p50'):.2f} | {med('p90'):.2f} | {med('p99'):.2f} "
                f"| {med('max'):.2f} | {cpu_per_op:.2f} | {med('serverRssMB'):.0f} "
                f"| {errors}/{sum(r['count'] for r in mine)} |"
            )
    return lines


def plot(folder: Path) -> Path:
    present = [n for n in SCENARIOS if (folder / f"{n}-consult-samples.txt").exists()]
    figure, axes = plt.subplots(1, max(1, len(present)), figsize=(5 * max(1, len(present)), 4))
    axes = axes if len(present) > 1 else [axes]
    for ax, name in zip(axes, present, strict=False):
        for target in ("peer", "consult"):
            path = folder / f"{name}-{target}-samples.txt"
            if not path.exists():
                continue
            samples = sorted(float(x) for x in path.read_text().split())
            if not samples:
                continue
            shares = [(i + 1) / len(samples) for i in range(len(samples))]
            label = f"{target} (p99 {percentile(samples, 0.99):.1f} ms)"
            ax.plot(samples, shares, label=label, color=COLOURS[target])
        ax.set_xscale("log")
        # Plain numbers on the decades only: minor labels (3×10², 4×10²) ran into each other.
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _pos: f"{x:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("latency, ms (log)")
        ax.set_ylabel("share of operations done")
        ax.set_title(SCENARIOS[name], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    out = folder / "latency.png"
    figure.savefig(out, dpi=110)
    return out


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    print("\n".join(table(folder)))
    print(f"\nplot: {plot(folder)}")


if __name__ == "__main__":
    main()
