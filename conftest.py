"""Root pytest configuration: skip modules whose optional dependency is absent.

``--doctest-modules`` imports every module of the package; ``fastspec/torch.py``
imports torch, which is an optional extra. find_spec looks torch up without
importing it.
"""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["fastspec/torch.py"]
