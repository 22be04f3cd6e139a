"""Files the studies write: one CSV writer for every table and one way to reach matplotlib
(the module is named so as not to shadow the standard library's ``_csv``)."""

import csv
import os
import sys


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, or None (with a message) without it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: pip install -e '.[bench]' (figure skipped)", file=sys.stderr)
        return None
    return plt


def write_csv(path, rows, columns=None):
    """Write ``rows`` (dicts) to the CSV file ``path``, creating its folder.

    ``columns`` defaults to the keys of the first row, in order.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
