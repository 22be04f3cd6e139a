"""``python -m fastspec.bench COMMAND``: run one of the project's measurements.

Commands::

    scaling [--quick] [--out docs] [--seeds 5]   rounds against n (AR) and N (diffusion)
    plot [--out docs]                            redraw docs/scaling.png from scaling.csv
    wallclock [--out docs]                       neural oracles, wall-clock per method
    overhead                                     engine share, numba models, n = 1024
    table                                        rounds and rows/n at n = 256, 1024, 4096
    plain [--quick] [--out docs]                 fastspec against the plain numpy loop (issue 8)
    memory [--out docs]                          peak memory against the largest oracle answer
    srs [--quick] [--out docs]                   srs against block: rounds and rows (issue 12)
    peers [--quick] [--out docs]                 fastspec against approximate samplers (issue 11)
    cluster [--quick] [--out docs]               Dask: samples/s with 1 and 2 local workers
    pretrained [--out docs] [--seeds 5]          shipped models: quality, rounds, acceptance
    dllm [--quick] [--out docs]                  against diffusion-LM unmasking, character chain (issue 19)
    remote [--quick] [--out docs]                through a V2 server on 127.0.0.1 (issue 22)
    remote-in-flight [--quick] [--out docs]      samples/s against max_in_flight (issue 22)
    drafts [--quick] [--out docs]                draft models against autospeculation (issue 20)
    confidence [--quick] [--out docs]            order="confidence": rounds against sequential (issue 20)

Outputs go to ``--out DIR``; without it, to a new folder
``fastspec-bench/COMMAND-YYYYmmdd-HHMMSS`` of the current folder, so a run never
overwrites earlier results, and the committed ``docs/`` only when asked for with
``--out docs``. ``plot`` reads ``scaling.csv`` from ``--out``, which it requires.
"""

import argparse
import os
import time


def _study():
    from . import study
    return study


def _run(a):
    if a.command == "scaling":
        _study().scaling(quick=a.quick, out=a.out, n_seeds=a.seeds)
    elif a.command == "plot":
        _study().plot_csv(os.path.join(a.out, "scaling.csv"), os.path.join(a.out, "scaling.png"))
    elif a.command == "wallclock":
        _study().wallclock(out=a.out)
    elif a.command == "overhead":
        _study().overhead()
    elif a.command == "table":
        _study().table()
    else:
        _run_module(a)


# Commands that are a function of a module of this package: (module, function, the
# command-line arguments it takes); "budget" is the module's QUICK or FULL, by --quick.
_MODULE_RUNS = {"plain": ("plain", "run", ("out", "quick")),
                "memory": ("memory", "run", ("out",)),
                "srs": ("srs", "run", ("out", "quick")),
                "peers": ("peers", "run", ("budget", "out")),
                "cluster": ("cluster", "run", ("out", "quick")),
                "pretrained": ("pretrained", "run", ("out", "n_seeds")),
                "dllm": ("dllm", "run", ("budget", "out")),
                "remote": ("remote", "run", ("out", "quick")),
                "remote-in-flight": ("remote", "in_flight", ("out", "quick")),
                "drafts": ("drafts", "run", ("out", "quick")),
                "confidence": ("confidence", "run", ("out", "quick"))}


def _run_module(a):
    import importlib
    name, function, args = _MODULE_RUNS[a.command]
    module = importlib.import_module(f".{name}", __package__)
    given = {"out": a.out, "quick": a.quick, "n_seeds": a.seeds}
    budget = ((module.QUICK if a.quick else module.FULL),) if "budget" in args else ()
    getattr(module, function)(*budget, **{key: given[key] for key in args if key != "budget"})


COMMANDS = ["scaling", "plot", "wallclock", "overhead", "table", "plain", "memory", "srs",
            "peers", "cluster", "pretrained", "dllm", "remote", "remote-in-flight", "drafts",
            "confidence"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastspec.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--quick", action="store_true", help="small sizes, few seeds")
    p.add_argument("--out", default=None,
                   help="folder for CSV and PNG outputs (default: a new folder "
                        "fastspec-bench/COMMAND-TIMESTAMP; --out docs replaces the committed ones)")
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args(argv)
    if a.out is None and a.command not in ("overhead", "table"):    # (these two only print)
        if a.command == "plot":
            p.error("plot redraws DIR/scaling.png from DIR/scaling.csv: give --out DIR")
        a.out = new_out_folder(a.command)
        print(f"writing to {a.out}")
    _run(a)


def new_out_folder(command, parent="fastspec-bench"):
    """A folder that did not exist, ``parent/command-YYYYmmdd-HHMMSS[-k]``, created."""
    stem = os.path.join(parent, f"{command}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, k = stem, 1
    while True:
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            k += 1
            path = f"{stem}-{k}"


if __name__ == "__main__":
    main()
