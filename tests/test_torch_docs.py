"""The PyTorch examples of docs/TORCH.md and of the README's "PyTorch models" section run as pasted.

Each file's ``python`` blocks run in order in one namespace (a later block uses the
names of an earlier one, as a reader pasting them would), with the printed values
checked where the docs show them in a comment.
"""

import contextlib
import io
import pathlib
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _run(blocks):
    namespace = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in blocks:
            exec(compile(code, "<docs>", "exec"), namespace)   # noqa: S102 - our own docs
    return namespace, out.getvalue()


def test_torch_md_examples_run():
    blocks = _blocks((ROOT / "docs" / "TORCH.md").read_text())
    assert len(blocks) >= 4
    _, printed = _run(blocks)
    lines = printed.splitlines()
    assert lines[0] == "(4, 3)"
    assert lines[4:] == ["(2, 2, 30522) True", "(4, 1, 8, 8)", "True", "(3, 2)"]
    assert all(line.startswith("the big cat ") for line in lines[1:4])


def test_readme_pytorch_section_runs():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### PyTorch models"):text.index("### Past one machine")]
    blocks = _blocks(section)
    assert len(blocks) == 1
    namespace, _ = _run(blocks)
    assert namespace["images"].shape == (4, 1, 8, 8)
    assert namespace["tokens"].shape == (4, 3)
