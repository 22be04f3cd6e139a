"""Files the studies write: one CSV writer for every table (named so as not to shadow the standard library's ``_csv``)."""

import csv
import os


def write_csv(path, rows, columns=None):
    """Write ``rows`` (dicts) to the CSV file ``path``, creating its folder.

    ``columns`` defaults to the keys of the first row, in order.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
