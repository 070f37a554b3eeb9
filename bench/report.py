"""The benchmark's table, ratios and target checks, as Markdown; and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = """\
| target | measured | met |
|---|---|---|
"""


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # NaN check


def render_markdown(r: dict[str, Any], *, command: str) -> str:
    predict = r["predict"]
    systems = list(predict)
    conns = sorted({int(c) for s in predict.values() for c in s})
    lines = [
        "# Benchmarks",
        "",
        "modelaas against DEEPaaS 2.6.0 and a bare Starlette/uvicorn app (the ceiling: same route, same JSON,",
        "no framework), serving the same trivial v2 model (an int argument, a small JSON answer), measured in",
        f"one run on this machine ({r['machine']['cpus']} CPUs, Python {r['machine']['python']}). Reproduce with:",
        "",
        "```bash",
        command,
        "```",
        "",
        "`modelaas` is one serving process, `modelaas-2` two (`--workers 2`); DEEPaaS and the ceiling run one process.",
        "wrk runs on the same machine, so absolute figures are lower than on a separate client; ratios are",
        "what to compare.",
        "",
        "## Trivial predict",
        "",
        "| system | connections | requests/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for s in systems:
        for c in conns:
            m = predict[s].get(c) or predict[s].get(str(c))
            lines.append(f"| {s} | {c} | {_fmt(m['rps'], 0)} | {_fmt(m.get('p50', float('nan')), 2)} | "
                         f"{_fmt(m.get('p99', float('nan')), 2)} |")
    lines += ["", "## Ratios and targets", "", TARGETS.rstrip()]
    lines += _targets(r)
    lines += ["", "## Start to ready (first successful prediction after the process starts)", "",
              "| system | seconds |", "|---|---|"]
    lines += [f"| {s} | {_fmt(v, 2)} |" for s, v in r["ready_s"].items()]
    if r["upload"]:
        lines += ["", "## Large upload (multipart, one file, streamed by the client)", "",
                  "| system | size MiB | seconds | peak memory growth MiB |", "|---|---|---|---|"]
        lines += [f"| {s} | {_fmt(u['size_mib'], 0)} | {_fmt(u['seconds'], 2)} | {_fmt(u['growth_mib'], 1)} |"
                  for s, u in r["upload"].items()]
    if r["training"]:
        lines += ["", "## Training", "",
                  "| system | submit to running s | cancel answer | cancel to process gone s | "
                  "predict p50 idle ms | predict p50 during training ms |", "|---|---|---|---|---|---|"]
        for s, t in r["training"].items():
            lines.append(f"| {s} | {_fmt(t['submit_to_running_s'], 3)} | {t['cancel_status']} {t['cancel_answer']} | "
                         f"{_fmt(t['cancel_to_gone_s'], 2)} | {_fmt(t['idle_p50_ms'], 2)} | {_fmt(t['busy_p50_ms'], 2)} |")
        lines += ["", "DEEPaaS reports a training `running` as soon as it is submitted, queued or not; modelaas says",
                  "`running` once the training's own process has been started."]
    lines += ["", "![benchmarks](img/benchmarks.png)", ""]
    return "\n".join(lines)


def _targets(r: dict[str, Any]) -> list[str]:
    out = []
    p = r["predict"]

    def rps(system: str, c: int) -> float:
        m = p.get(system, {}).get(c) or p.get(system, {}).get(str(c))
        return float(m["rps"]) if m else float("nan")

    def check(name: str, value: str, ok: bool | None) -> None:
        out.append(f"| {name} | {value} | {'yes' if ok else 'no' if ok is not None else 'n/a'} |")

    if "deepaas" in p and 16 in [int(c) for c in p["modelaas"]]:
        ratio = rps("modelaas", 16) / rps("deepaas", 16)
        check("trivial predict, 16 connections, 1 process: >= 10x DEEPaaS", f"{ratio:.1f}x", ratio >= 10)
    if "hello" in p:
        share = rps("modelaas", 16) / rps("hello", 16)
        check(">= 50% of the bare ceiling (16 connections)", f"{share:.0%}", share >= 0.5)
    if "deepaas" in p:
        worse = [c for c in p["modelaas"] if (p["modelaas"][c].get("p99", 0) >= p["deepaas"].get(c, {}).get("p99", 0))]
        check("p99 below DEEPaaS at every concurrency", "all" if not worse else f"not at {worse}", not worse)
    if "modelaas" in r["upload"]:
        growth = r["upload"]["modelaas"]["growth_mib"]
        check(f"{r['upload']['modelaas']['size_mib']:.0f} MiB upload: memory growth < 32 MiB", f"{growth:.1f} MiB",
              growth < 32)
    if "modelaas" in r["ready_s"]:
        check("start to ready < 1 s", f"{r['ready_s']['modelaas']:.2f} s", r["ready_s"]["modelaas"] < 1)
    t = r["training"].get("modelaas-2")
    if t:
        ratio = t["busy_p50_ms"] / t["idle_p50_ms"]
        check("predict p50 during a training within 1.5x of idle (2 workers)", f"{ratio:.2f}x", ratio <= 1.5)
    return out


def write_plot(r: dict[str, Any], path: Path) -> None:
    """requests/s per system and concurrency; needs matplotlib (pip install 'modelaas[bench]')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = r["predict"]
    conns = sorted({int(c) for s in p.values() for c in s})
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    width = 0.8 / len(p)
    for i, (system, by_conn) in enumerate(p.items()):
        values = [float((by_conn.get(c) or by_conn.get(str(c)))["rps"]) for c in conns]
        ax.bar([x + i * width for x in range(len(conns))], values, width, label=system)
    ax.set_xticks([x + width * (len(p) - 1) / 2 for x in range(len(conns))], [f"{c} connections" for c in conns])
    ax.set_ylabel("trivial predictions per second")
    ax.set_title("modelaas vs DEEPaaS 2.6.0 (same machine, same model)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
