"""Root pytest configuration: what ``--doctest-modules`` must not import.

``fastspec/torch.py`` and the training modules import torch, an optional extra
(``torch``, ``train``), at the top; without torch, importing them for doctest
collection would fail. find_spec looks torch up without importing it.
"""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore += ["fastspec/torch.py", "fastspec/train/nets.py",
                       "fastspec/train/trainers.py"]
