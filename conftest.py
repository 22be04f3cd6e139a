"""Root pytest configuration: what ``--doctest-modules`` must not import."""

import importlib.util

# The training modules import torch at the top (the optional "train" extra) and hold
# no doctests; without torch, importing them for doctest collection would fail.
collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore += ["fastspec/train/nets.py", "fastspec/train/trainers.py"]
