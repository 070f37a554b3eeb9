"""The benchmark's tables, ratios and target checks, as Markdown; and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOTES = Path(__file__).resolve().parent / "notes.md"
NAN = float("nan")
DESCRIPTIONS = {
    "hello": "the ceiling: a bare Starlette app on the same uvicorn (httptools, uvloop), same route, same JSON",
    "deepaas": "DEEPaaS 2.6.0, `deepaas-run` (one process, its default pool of one worker)",
    "modelaas": "`modelaas serve`, one serving process, default settings",
    "modelaas-2": "`modelaas serve --workers 2`",
    "modelaas-inline": "`modelaas serve --predict-inline always` (sync predict on the event loop thread)",
    "modelaas-nometrics": "`modelaas serve --nometrics` (no Prometheus metrics: their cost is modelaas against this)",
}


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # NaN check
        return "n/a"
    return f"{value:,.{digits}f}"


def _point(r: dict[str, Any], system: str, conns: int) -> dict[str, float]:
    by_conn = r["predict"].get(system, {})
    return by_conn.get(conns) or by_conn.get(str(conns)) or {}


def _conns(r: dict[str, Any]) -> list[int]:
    return sorted({int(c) for s in r["predict"].values() for c in s})


def render_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    systems = list(r["predict"])
    lines = [
        "# Benchmarks",
        "",
        "modelaas against DEEPaaS 2.6.0 and a bare Starlette/uvicorn app (the ceiling), serving the same",
        "trivial DEEPaaS v2 model (`bench/models`: an int argument, a small JSON answer), driven by wrk over",
        "loopback, all in one run on one machine. This page is written by that run:",
        "",
        "```bash",
        f"{r['command']} --write",
        "```",
        "",
        f"modelaas {m.get('commit') or ''}, {m.get('date', '')}. Machine: {m['cpus']} CPUs "
        f"({m.get('cpu') or 'unknown CPU'}), Python {m['python']}, {m.get('wrk', 'wrk')}. 1-minute load average",
        f"{_fmt(m.get('load_start'), 2)} at the start, {_fmt(m.get('load_end'), 2)} at the end (the run's own load).",
        "wrk runs on the same machine: it takes CPU from the servers, so absolute figures are lower than",
        "with a separate client; compare within the run.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *_targets(r),
        "",
        "## Trivial predict",
        "",
        *[f"* `{s}`: {DESCRIPTIONS.get(s, s)}" for s in systems],
        "",
        "`server CPU` is the CPU time the server's processes used per answered request; `other CPU` is",
        "what the rest of the machine (not the server, not wrk) used during the measurement, in cores.",
        "",
        "| system | connections | requests/s | p50 ms | p99 ms | server CPU µs/request | other CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in systems:
        for c in _conns(r):
            p = _point(r, s, c)
            if not p:
                continue
            errors = int(p.get("errors", 0) + p.get("timeouts", 0))
            note = f" ({errors} errors)" if errors else ""
            lines.append(
                f"| {s} | {c} | {_fmt(p['rps'], 0)}{note} | {_fmt(p.get('p50'), 2)} | {_fmt(p.get('p99'), 2)} | "
                f"{_fmt(p.get('server_us'), 0)} | {_fmt(p.get('other_cpu'), 2)} |"
            )
    lines += ["", "## Ratios", "", *_ratios(r)]
    lines += [
        "",
        "## Start to ready",
        "",
        "From starting the command to the first successful prediction (polling every 5 ms).",
        "",
        "| system | seconds |",
        "|---|---|",
    ]
    lines += [f"| {s} | {_fmt(v, 2)} |" for s, v in r["ready_s"].items()]
    if r["upload"]:
        lines += [
            "",
            "## Large upload",
            "",
            "One file in a multipart body, streamed by the client, one second after the server first answered;",
            "memory is the peak resident memory of the server's processes, sampled every 5 ms, minus what it",
            "was before the upload.",
            "",
            "| system | size MiB | seconds | peak memory growth MiB |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {s} | {_fmt(u['size_mib'], 0)} | {_fmt(u['seconds'], 2)} | {_fmt(u['growth_mib'], 1)} |"
            for s, u in r["upload"].items()
        ]
    if r["training"]:
        lines += [
            "",
            "## Training",
            "",
            "A training that burns one core for 30 s is submitted, predicted against (wrk, one connection), then",
            "cancelled. Running: as the server reports it; gone: the process that burned the CPU has exited.",
            "",
            "| system | submit to running s | cancel answer | cancel to gone s | predict p50 idle ms | "
            "predict p50 during training ms | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for s, t in r["training"].items():
            busy = t["busy_p50_ms"] if t.get("busy_answered", 1) else NAN
            shown = _fmt(busy, 2) if busy == busy else "no answer within 2 s"
            lines.append(
                f"| {s} | {_fmt(t['submit_to_running_s'], 3)} | {t['cancel_status']} {t['cancel_answer']} | "
                f"{_fmt(t['cancel_to_gone_s'], 2)} | {_fmt(t['idle_p50_ms'], 2)} | {shown} | "
                f"{_fmt(busy / t['idle_p50_ms'], 2) + 'x' if busy == busy else 'n/a'} |"
            )
        lines += [
            "",
            "DEEPaaS reports a training `running` as soon as it is submitted and runs it in the pool process",
            "that also runs predictions: predictions wait until the training ends. modelaas says `running` once",
            "the training's own (lower-priority) process has started.",
        ]
    if r.get("oip"):
        from oip_bench import render_oip

        lines += ["", *render_oip(r["oip"])]
    if r.get("batching"):
        from batching import render as render_batching

        lines += ["", *render_batching(r["batching"])]
    lines += ["", "![requests per second and p99 latency](img/benchmarks.png)", ""]
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip(), ""]
    return "\n".join(lines)


def _ratios(r: dict[str, Any]) -> list[str]:
    out = [
        "| system | connections | x DEEPaaS requests/s | share of the ceiling | p99 vs DEEPaaS |",
        "|---|---|---|---|---|",
    ]
    for s in [s for s in r["predict"] if s.startswith("modelaas")]:
        for c in _conns(r):
            p, d, h = _point(r, s, c), _point(r, "deepaas", c), _point(r, "hello", c)
            if not p:
                continue
            times = p["rps"] / d["rps"] if d.get("rps") else NAN
            share = p["rps"] / h["rps"] if h.get("rps") else NAN
            p99 = f"{_fmt(p.get('p99'), 2)} vs {_fmt(d.get('p99'), 2)} ms" if d else "n/a"
            times_shown = f"{_fmt(times, 1)}x" if times == times else "n/a"
            out.append(f"| {s} | {c} | {times_shown} | {_fmt(share * 100, 0)}% | {p99} |")
    return out


def _targets(r: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def check(name: str, value: str, ok: bool | None) -> None:
        out.append(f"| {name} | {value} | {'yes' if ok else 'no' if ok is not None else 'not measured'} |")

    m16, d16, h16 = _point(r, "modelaas", 16), _point(r, "deepaas", 16), _point(r, "hello", 16)
    if m16 and d16:
        ratio = m16["rps"] / d16["rps"]
        check("trivial predict, 16 connections, one process: ≥ 10x DEEPaaS requests/s", f"{ratio:.1f}x", ratio >= 10)
    else:
        check("trivial predict, 16 connections, one process: ≥ 10x DEEPaaS requests/s", "no DEEPaaS in this run", None)
    if m16 and h16:
        share = m16["rps"] / h16["rps"]
        check("... and ≥ 50% of the bare ceiling", f"{share:.0%}", share >= 0.5)
    n16 = _point(r, "modelaas-nometrics", 16)
    if m16 and n16:
        kept = m16["rps"] / n16["rps"]
        cpu = f"; server CPU {_fmt(m16.get('server_us'), 0)} vs {_fmt(n16.get('server_us'), 0)} µs/request"
        check(
            "metrics on: ≥ 95% of the requests/s with --nometrics (16 connections)", f"{kept:.1%}{cpu}", kept >= 0.95
        )
    if "deepaas" in r["predict"]:
        worse = []
        for c in _conns(r):
            mp, dp = _point(r, "modelaas", c).get("p99", NAN), _point(r, "deepaas", c).get("p99", NAN)
            if not mp < dp:
                worse.append(c)
        shown = ", ".join(
            f"{c}: {_fmt(_point(r, 'modelaas', c).get('p99'), 2)} vs {_fmt(_point(r, 'deepaas', c).get('p99'), 2)} ms"
            for c in _conns(r)
        )
        check("p99 latency below DEEPaaS at every concurrency", shown, not worse)
    if "modelaas" in r["upload"]:
        u = r["upload"]["modelaas"]
        d = r["upload"].get("deepaas")
        versus = f" (DEEPaaS {d['growth_mib']:.0f} MiB)" if d else ""
        check(
            f"{u['size_mib']:.0f} MiB upload: peak memory growth < 32 MiB",
            f"{u['growth_mib']:.1f} MiB{versus}",
            u["growth_mib"] < 32,
        )
    if "modelaas" in r["ready_s"]:
        check("start to ready < 1 s", f"{r['ready_s']['modelaas']:.2f} s", r["ready_s"]["modelaas"] < 1)
    if r.get("oip"):
        from oip_bench import oip_targets

        out += oip_targets(r["oip"])
    t = r["training"].get("modelaas")
    if t:
        ratio = t["busy_p50_ms"] / t["idle_p50_ms"]
        check(
            "predict p50 during a training within 1.5x of idle",
            f"{ratio:.2f}x ({t['busy_p50_ms']:.2f} vs {t['idle_p50_ms']:.2f} ms)",
            ratio <= 1.5,
        )
    return out


def write_plot(r: dict[str, Any], path: Path) -> None:
    """Requests/s and p99 per system and concurrency; needs matplotlib (pip install 'modelaas[bench]')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(r["predict"])
    conns = _conns(r)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        xs = [x + i * width for x in range(len(conns))]
        left.bar(xs, [_point(r, system, c).get("rps", 0.0) for c in conns], width, label=system)
        right.bar(xs, [_point(r, system, c).get("p99", 0.0) for c in conns], width, label=system)
    for ax in (left, right):
        ax.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(conns))], [f"{c} conn." for c in conns])
    left.set_ylabel("trivial predictions per second")
    left.set_title("Throughput (higher is better)")
    right.set_ylabel("p99 latency, ms (log)")
    right.set_yscale("log")
    right.set_title("p99 latency (lower is better)")
    left.legend(fontsize="small")
    fig.suptitle(f"modelaas vs DEEPaaS 2.6.0, same machine, same model ({r['machine'].get('date', '')})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
