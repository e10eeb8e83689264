"""Tracebacks name a generated cell as the run tree does.

A generated cell runs inside the `%%rlm` cell without a history entry of its own, so IPython would label
each of its tracebacks with the `%%rlm` cell's number (`Cell In[3], line 7`), while the tree shows it as
`Cell 1 [2]`. The kernel's compiler (ipykernel's, which names code by a hash of its text) labels the
code of a generated cell `rlm[2]`, the number in the tree's brackets."""

from __future__ import annotations

from ipykernel.compiler import XCachingCompiler


class RLMCompiler(XCachingCompiler):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._labels: dict[str, str] = {}

    def label(self, code: str, label: str) -> None:
        """Show tracebacks through `code` (as it will be run) under `label`."""
        self._labels[self.get_code_name(code, code, 0)] = label

    def format_code_name(self, name: str) -> tuple[str, str] | None:
        label = self._labels.get(name)
        return ("Cell", label) if label is not None else super().format_code_name(name)
