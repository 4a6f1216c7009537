"""The latency chart: one CDF per rate, the worker solid and the bare aiokafka loop dashed, log time axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def latency_chart(samples: dict[str, dict[str, list[float]]], path: Path, section: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here, and none needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5), dpi=90)
    rates = sorted({int(r) for target in samples.values() for r in target})
    colours = plt.get_cmap("viridis")([i / max(1, len(rates) - 1) * 0.85 for i in range(len(rates))])
    for colour, rate in zip(colours, rates, strict=True):
        for target, style in (("worker", "-"), ("bare_aiokafka", "--")):
            values = sorted(samples.get(target, {}).get(str(rate), []))
            if not values:
                continue
            ms = [v * 1000 for v in values]
            share = [(i + 1) / len(ms) for i in range(len(ms))]
            kept = section.get(target, {}).get(str(rate), {}).get("kept_up", True)
            label = f"{target.replace('_', ' ')} @ {rate}/s" + ("" if kept else " (fell behind)")
            ax.step(ms, share, where="post", linestyle=style, color=colour, label=label, linewidth=1.6)
    ax.set_xscale("log")
    ax.set_xlabel("event → output latency (ms, log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.axhline(0.99, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title("streamscore worker vs bare aiokafka loop: latency CDF per produce rate")
    # Outside the axes: inside, it would hide the slowest curves, which end at the bottom right.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
