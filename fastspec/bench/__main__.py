"""``python -m fastspec.bench COMMAND``: run one of the project's measurements.

Commands::

    scaling [--quick] [--out docs] [--seeds 5]   rounds against n (AR) and N (diffusion)
    plot [--out docs]                            redraw docs/scaling.png from scaling.csv
    wallclock [--out docs]                       neural oracles, wall-clock per method
    overhead                                     engine share, numba models, n = 1024
    table                                        rounds and rows/n at n = 256, 1024, 4096
    pretrained [--out docs] [--seeds 5]          shipped models: quality, rounds, acceptance
"""

import argparse
import os


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastspec.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["scaling", "plot", "wallclock", "overhead", "table",
                                       "pretrained"])
    p.add_argument("--quick", action="store_true", help="small sizes, few seeds")
    p.add_argument("--out", default="docs", help="folder for CSV and PNG outputs")
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args(argv)
    from . import study
    if a.command == "pretrained":
        from . import pretrained
        pretrained.run(out=a.out, n_seeds=a.seeds)
    elif a.command == "scaling":
        study.scaling(quick=a.quick, out=a.out, n_seeds=a.seeds)
    elif a.command == "plot":
        study.plot_csv(os.path.join(a.out, "scaling.csv"), os.path.join(a.out, "scaling.png"))
    elif a.command == "wallclock":
        study.wallclock(out=a.out)
    elif a.command == "overhead":
        study.overhead()
    else:
        study.table()


if __name__ == "__main__":
    main()
