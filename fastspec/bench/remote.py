"""Wall-clock of sampling through a V2 inference server on 127.0.0.1 (issue 22).

``python -m fastspec.bench remote [--quick]`` starts ``python -m fastspec.remote
serve digits_ar text_mlm digits_denoiser`` once per per-call delay (0, 5 and
20 ms, added by the server to every call to emulate a remote GPU), and times
``fastspec.sample`` through :func:`fastspec.remote.ar_model` /
:func:`fastspec.remote.diffusion_model` for methods sequential and block, with 1
and 64 samples, with and without the positions protocol (AR models, when the
engine's ARModel takes ``positions=True``), and with ``max_in_flight`` 1 and 4
at 64 samples. ``python -m fastspec.bench remote-in-flight [--quick]`` times
``max_in_flight`` 1, 2 and 4 alone, on the chain of the issue's first
measurement (``markov256``: n = 256, q = 27, positions protocol), whose answers
are large enough that moving them dominates a call (:func:`in_flight`). Each row
of ``remote.csv`` holds the median wall-clock of its
runs, the rounds and calls, and the summed round-trip time of the calls as the
client saw them (``stats.oracle_seconds``); ``remote.png`` plots wall-clock
against the delay.
"""

import os
import time

import numpy as np

from .files import write_csv

MODELS = {"digits_ar": ("ar", dict(n=64, q=4)),
          "text_mlm": ("ar", dict(n=64, q=93)),
          "digits_denoiser": ("diffusion", dict(shape=(8, 8)))}
FULL = dict(delays_ms=(0, 5, 20), sizes=(1, 64), steps=200, in_flight=(1, 4),
            repeat_below=3.0, repeats=3)
QUICK = dict(delays_ms=(0, 20), sizes=(1, 8), steps=50, in_flight=(1, 4),
             repeat_below=0.0, repeats=1)


def _remote_model(url, name, positions):
    import fastspec.remote as fr
    kind, kw = MODELS[name]
    if kind == "ar":
        return fr.ar_model(url, name, positions=positions, timeout=600.0, **kw)
    return fr.diffusion_model(url, name, timeout=600.0, **kw)


def _timed(model, kwargs, max_in_flight, cfg):
    """Median wall-clock of the runs, median of wall-clock / summed round trips, last stats.

    The second is NaN with several groups in flight, whose round trips overlap.
    """
    import fastspec.remote as fr
    times, ratios, res = [], [], None
    while True:
        t = time.perf_counter()
        res = fr.sample(model, max_in_flight=max_in_flight, **kwargs)
        times.append(time.perf_counter() - t)
        ratios.append(times[-1] / max(res.stats.oracle_seconds, 1e-12) if max_in_flight == 1
                      else float("nan"))
        if len(times) >= cfg["repeats"] or times[0] >= cfg["repeat_below"]:
            return float(np.median(times)), float(np.median(ratios)), len(times), res


def run(out="docs", quick=False):
    """The measurement; writes ``remote.csv`` and ``remote.png`` in ``out``."""
    from fastspec.remote import sample as fr_sample
    from fastspec.remote.server import start_server
    from fastspec.schedules import ve

    cfg = QUICK if quick else FULL
    print(f"load before: {os.getloadavg()}", flush=True)
    schedule = dict(schedule=ve(cfg["steps"], 80.0, 0.002))     # (diffusion only)
    rows = []
    for delay in cfg["delays_ms"]:
        with start_server(list(MODELS), delay=delay / 1000.0, timeout=120) as server:
            for name, (kind, _) in MODELS.items():
                for positions in ((False, True) if kind == "ar" else (False,)):
                    model = _remote_model(server.url, name, positions)
                    extra = schedule if kind == "diffusion" else {}
                    # The server's first calls of a model are slow (its own warm-up: the
                    # first digits_ar run took 5.3 s against 0.5 s, and being over 3 s it
                    # was not repeated), so one untimed sample per method goes first; it
                    # also compiles the engine's kernels.
                    for method in ("sequential", "block"):
                        fr_sample(model, n_samples=1, method=method, seed=0, **extra)
                    for n_samples in cfg["sizes"]:
                        if quick and name == "text_mlm" and n_samples > 1:
                            continue
                        for method in ("sequential", "block"):
                            kwargs = dict(n_samples=n_samples, method=method, seed=1, **extra)
                            flights = cfg["in_flight"] if n_samples > 1 and name != "text_mlm" \
                                else (1,)
                            for mif in flights:
                                load = os.getloadavg()[0]
                                seconds, ratio, runs, res = _timed(model, kwargs, mif, cfg)
                                st = res.stats
                                rows.append(dict(
                                    model=name, method=method, n_samples=n_samples,
                                    positions=positions, delay_ms=delay, max_in_flight=mif,
                                    seconds=seconds, runs=runs, rounds=st.rounds,
                                    oracle_calls=st.oracle_calls, rows=st.contexts,
                                    round_trip_seconds_summed=st.oracle_seconds,
                                    wall_over_round_trips=ratio,
                                    samples_per_second=n_samples / seconds,
                                    load_1min=load))
                                print(f"delay {delay:2d} ms  {name:15s} {method:10s} "
                                      f"S={n_samples:3d} pos={positions!s:5s} mif={mif}: "
                                      f"{seconds:7.3f} s  rounds {st.rounds:4d}  calls "
                                      f"{st.oracle_calls:4d}  wall/RTT "
                                      f"{rows[-1]['wall_over_round_trips']:.2f}  load {load:.1f}",
                                      flush=True)
                    model.denoise.close() if kind == "diffusion" else model.marginals.close()
    _speedups(rows)
    write_csv(os.path.join(out, "remote.csv"), rows)
    plot(rows, os.path.join(out, "remote.png"))
    print(table(rows))
    print(f"load after: {os.getloadavg()}", flush=True)
    return rows


#: The in-flight study: 64 samples of the issue's n = 256, q = 27 chain, block, positions.
IN_FLIGHT = dict(model="markov256", n=256, q=27, n_samples=64, flights=(1, 2, 4),
                 delays_ms=(0, 5, 20), repeats=3)
IN_FLIGHT_QUICK = dict(IN_FLIGHT, n_samples=16, delays_ms=(20,), repeats=1)


def in_flight(out="docs", quick=False):
    """Samples per second against ``max_in_flight``; writes ``remote_in_flight.csv``.

    Each group in flight is a slice of the samples with its own rounds
    (:func:`fastspec.remote.sample`), so groups overlap one another's round
    trips: the answers' transfer and the server's delay. Runs of the flights
    are interleaved (1, 2, 4, 1, 2, 4, ...) so that a change in the machine's
    load falls on all of them; the median is kept.
    """
    import fastspec.remote as fr
    from fastspec.remote.server import start_server

    cfg = IN_FLIGHT_QUICK if quick else IN_FLIGHT
    print(f"load before: {os.getloadavg()}", flush=True)
    rows = []
    for delay in cfg["delays_ms"]:
        with start_server([cfg["model"]], delay=delay / 1000.0, timeout=120) as server:
            model = fr.ar_model(server.url, cfg["model"], n=cfg["n"], q=cfg["q"],
                                positions=True, timeout=600.0)
            kwargs = dict(n_samples=cfg["n_samples"], method="block", seed=1)
            fr.sample(model, max_in_flight=2, **dict(kwargs, n_samples=4))   # warm-up
            times = {g: [] for g in cfg["flights"]}
            stats = {}
            for _ in range(cfg["repeats"]):
                for g in cfg["flights"]:
                    t = time.perf_counter()
                    stats[g] = fr.sample(model, max_in_flight=g, **kwargs).stats
                    times[g].append(time.perf_counter() - t)
            model.marginals.close()
        one = float(np.median(times[cfg["flights"][0]]))
        for g in cfg["flights"]:
            seconds = float(np.median(times[g]))
            rows.append(dict(model=cfg["model"], method="block", n_samples=cfg["n_samples"],
                             positions=True, delay_ms=delay, max_in_flight=g, seconds=seconds,
                             runs=len(times[g]), rounds=stats[g].rounds,
                             oracle_calls=stats[g].oracle_calls, rows=stats[g].contexts,
                             samples_per_second=cfg["n_samples"] / seconds,
                             speedup_vs_in_flight_1=one / seconds,
                             load_1min=os.getloadavg()[0]))
            print(f"delay {delay:2d} ms  max_in_flight={g}: {seconds:6.2f} s  "
                  f"{rows[-1]['samples_per_second']:6.1f} samples/s  "
                  f"{rows[-1]['speedup_vs_in_flight_1']:.2f}x  calls {stats[g].oracle_calls}",
                  flush=True)
    write_csv(os.path.join(out, "remote_in_flight.csv"), rows)
    print(f"load after: {os.getloadavg()}", flush=True)
    return rows


def _speedups(rows):
    """Add sequential/block and max_in_flight speed-ups measured in the same run."""
    def key(r, **change):
        d = dict(model=r["model"], n_samples=r["n_samples"], positions=r["positions"],
                 delay_ms=r["delay_ms"], method=r["method"], max_in_flight=r["max_in_flight"])
        d.update(change)
        return tuple(sorted(d.items()))
    index = {key(r): r for r in rows}
    for r in rows:
        seq = index.get(key(r, method="sequential"))
        one = index.get(key(r, max_in_flight=1))
        r["speedup_vs_sequential"] = seq["seconds"] / r["seconds"] if seq else float("nan")
        r["speedup_vs_in_flight_1"] = one["seconds"] / r["seconds"] if one else float("nan")


def table(rows):
    """Markdown table of block against sequential (max_in_flight 1)."""
    lines = ["| model | samples | positions | delay (ms) | sequential (s) | block (s) | "
             "block rounds | speed-up | block wall / round trips |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] != "block" or r["max_in_flight"] != 1:
            continue
        seq = r["seconds"] * r["speedup_vs_sequential"]
        lines.append(f"| {r['model']} | {r['n_samples']} | {'yes' if r['positions'] else 'no'} "
                     f"| {r['delay_ms']} | {seq:.2f} | {r['seconds']:.2f} | {r['rounds']} | "
                     f"{r['speedup_vs_sequential']:.1f}x | {r['wall_over_round_trips']:.2f} |")
    flights = [r for r in rows if r["max_in_flight"] > 1]
    if flights:
        lines += ["", "| model | method | samples | delay (ms) | max_in_flight | samples/s | "
                  "vs max_in_flight=1 |", "|---|---|---|---|---|---|---|"]
        for r in flights:
            lines.append(f"| {r['model']} | {r['method']} | {r['n_samples']} | {r['delay_ms']} "
                         f"| {r['max_in_flight']} | {r['samples_per_second']:.1f} | "
                         f"{r['speedup_vs_in_flight_1']:.2f}x |")
    return "\n".join(lines)


def plot(rows, path):
    """Wall-clock against the per-call delay, one panel per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        series = {}
        for r in rows:
            if r["model"] == name and r["max_in_flight"] == 1:
                label = (f"{r['method']}, {r['n_samples']} sample"
                         + ("s" if r["n_samples"] > 1 else "")
                         + (", positions" if r["positions"] else ""))
                series.setdefault(label, []).append((r["delay_ms"], r["seconds"]))
        for label, pts in sorted(series.items()):
            pts.sort()
            style = "-" if label.startswith("block") else "--"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=label)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("per-call delay (ms)")
        ax.set_ylabel("wall-clock (s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
