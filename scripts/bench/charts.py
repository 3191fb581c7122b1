#!/usr/bin/env python3
"""SVG charts of a bench run, from the JSON its sections wrote (matplotlib, the SVG backend; no
date or random ids in the files, so a chart changes only when its numbers do).

  charts.py coldstart RESULTS_DIR OUT.svg      cold-start distributions, ours and Node's
  charts.py fanout-cpu RESULTS_DIR OUT.svg     CPU per post, ours and Node's
  charts.py fanout-quota RESULTS_DIR OUT.svg   posts taken and refused per 100 ms against each quota
  charts.py local RESULTS_DIR OUT.svg          ws-local: connect latency, fan-out times, idle sockets
  charts.py segments RESULTS_DIR OUT.svg       a broadcast in n segments: time and share of the quota
"""

import json
import os
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "ws-connection", "svg.fonttype": "none", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False})
OURS, NODE, QUOTA, REFUSED = "#d9480f", "#1c7ed6", "#495057", "#c92a2a"


def load(results, name):
    with open(os.path.join(results, name)) as f:
        return json.load(f)


def save(fig, out):
    fig.tight_layout()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": "scripts/bench/charts.py"})
    plt.close(fig)


def strips(ax, groups, colors, unit):
    """One column of points per group (jittered deterministically) with its median as a bar."""
    for i, (values, color) in enumerate(zip(groups, colors)):
        n = len(values)
        xs = [i + (k / max(n - 1, 1) - 0.5) * 0.5 for k in range(n)]
        ax.scatter(xs, values, s=10, color=color, alpha=0.6, linewidths=0)
        median = sorted(values)[n // 2]
        ax.hlines(median, i - 0.3, i + 0.3, color=color, linewidth=2)
        ax.annotate(f"{median:.3g} {unit}", (i + 0.32, median), va="center", fontsize=8, color=color)


def coldstart(results, out):
    data = load(results, "coldstart-connect.json")["contestants"]
    ours, node = data["ConnectFunction"]["samples"], data["Node 20 + SDK v3"]["samples"]
    measures = [("init_ms", "init (ms)"), ("cold_total_ms", "cold total (ms)"), ("peak_rss_mib", "peak RSS (MiB)")]
    fig, axes = plt.subplots(1, len(measures), figsize=(8, 3))
    for ax, (key, label) in zip(axes, measures):
        strips(ax, [[s[key] for s in ours], [s[key] for s in node]], [OURS, NODE], "")
        ax.set_yscale("log")
        ax.set_xticks([0, 1], ["ours (Rust)", "Node 20\n+ SDK v3"])
        ax.set_xlim(-0.6, 1.9)
        ax.set_title(label)
    fig.suptitle(f"ConnectFunction cold starts: {len(ours)} fresh processes each (log scale)")
    save(fig, out)


def fanout_cpu(results, out):
    data = load(results, "fanout-cpu.json")
    c = data["contestants"]
    names = list(c)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3))
    strips(axes[0], [c[n]["cpu_us_per_post"]["samples"] for n in names], [OURS, NODE], "µs")
    axes[0].set_title("CPU per post (µs), one point per round")
    strips(axes[1], [c[n]["fanout_ms"]["samples"] for n in names], [OURS, NODE], "ms")
    axes[1].set_title(f"one fan-out to {data['connections']:,} (ms)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), [n.replace(" + ", "\n+ ") for n in names])
        ax.set_xlim(-0.6, len(names) - 0.1)
    fig.suptitle(f"Fan-out, {data['concurrency']} posts in flight, a Management API stand-in that answers at once")
    save(fig, out)


def fanout_quota(results, out):
    runs = [load(results, name) for name in sorted(os.listdir(results)) if name.startswith("fanout-quota-")]
    runs.sort(key=lambda r: r["rate"])
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.4 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        scale = 1000 / run["bin_ms"]
        xs = [i * run["bin_ms"] / 1000 for i in range(len(run["bins"]))]
        ax.fill_between(xs, [b[0] * scale for b in run["bins"]], step="post", color=OURS, alpha=0.7, label="posts taken /s")
        ax.step(xs, [b[1] * scale for b in run["bins"]], where="post", color=REFUSED, linewidth=0.8, label="refused (429) /s")
        ax.axhline(run["rate"], color=QUOTA, linestyle="--", linewidth=1, label=f"quota {run['rate']:,}/s")
        ax.set_title(f"{run['connections']:,} connections, quota {run['rate']:,} posts/s (burst {run['burst']:,})")
        ax.set_xlabel("seconds")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    fig.suptitle("Fan-out against the Management API quota, per 100 ms")
    save(fig, out)


def local(results, out):
    r = load(results, "local.json")
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    strips(axes[0], [r["connect"]["samples_ms"]], [OURS], "ms")
    axes[0].set_title(f"connect → record, {r['connect']['connects']} (ms)")
    axes[0].set_xticks([])
    groups = [r["fanout"]["samples_ms"], r["fanout10k"]["samples_ms"]]
    strips(axes[1], [[t / 1000 for t in g] for g in groups], [OURS, OURS], "s")
    axes[1].set_title("fan-out until every client has it (s)")
    axes[1].set_xticks([0, 1], [f"{r['fanout']['connections']:,} clients", f"{r['fanout10k']['connections']:,} clients"])
    axes[1].set_xlim(-0.6, 1.9)
    axes[1].set_yscale("log")
    idle = r["idle"]
    axes[2].bar([0, 1], [idle["rss_before_mib"], idle["rss_after_mib"]], color=[QUOTA, OURS])
    axes[2].set_xticks([0, 1], ["no sockets", f"{idle['sockets']:,} idle"])
    axes[2].set_title("ws-local's memory (MiB)")
    fig.suptitle("The local stack (ws-local + the real functions + moto)")
    save(fig, out)


def segments(results, out):
    runs = sorted((load(results, name) for name in os.listdir(results) if name.startswith("segments-")),
                  key=lambda r: r["segments"])
    ns = [r["segments"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    for r in runs:
        left.scatter([r["segments"]] * len(r["segment_seconds"]), r["segment_seconds"], s=12, color=OURS, alpha=0.6)
    left.plot(ns, [r["seconds"] for r in runs], color=OURS, marker="o", label="whole broadcast")
    left.set_xscale("log", base=2)
    left.set_xticks(ns, [str(n) for n in ns])
    left.set_xlabel("segments")
    left.set_ylabel("seconds (dots: each segment's end)")
    left.legend(frameon=False)
    right.bar([str(n) for n in ns], [r["ratio"] for r in runs], color=OURS)
    right.axhline(1.0, color=QUOTA, linestyle="--", linewidth=1)
    right.axhline(0.8, color=QUOTA, linestyle=":", linewidth=1)
    right.set_xlabel("segments")
    right.set_ylabel("posts/s ÷ quota")
    fig.suptitle(f"A broadcast to {runs[0]['connections']:,} connections, quota {runs[0]['rate']:,}/s, 30 ms per post")
    save(fig, out)


CHARTS = {"coldstart": coldstart, "fanout-cpu": fanout_cpu, "fanout-quota": fanout_quota, "local": local, "segments": segments}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in CHARTS:
        sys.exit(f"usage: charts.py {{{'|'.join(CHARTS)}}} RESULTS_DIR OUT.svg")
    CHARTS[sys.argv[1]](sys.argv[2], sys.argv[3])
