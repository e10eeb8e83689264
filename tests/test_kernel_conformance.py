"""The RLM kernel speaks the Jupyter protocol like the standard Python kernel (jupyter_kernel_test),
and adds %%rlm without changing how ordinary cells behave."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

import jupyter_kernel_test
from jupyter_client.manager import start_new_kernel

from rlm_kernel import __version__
from rlm_kernel.kernel.testing import jupyter_sandbox


class RLMKernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = "rlm"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    completion_samples = (
        {"text": "zip_longe", "matches": set()},  # nothing: no import yet
        {"text": "import itertools; itertools.zip_longe", "matches": {"zip_longest"}},
        {"text": "llm_que", "matches": set()},  # the RLM helpers exist only during a run
    )
    complete_code_samples = ("1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n")
    incomplete_code_samples = ("print('''hello", "def f(x):\n  x*2")
    invalid_code_samples = ("import = 7q",)
    code_page_something = "print?"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = (
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(4)]", "result": "[0, 1, 4, 9]"},
        {"code": "callable(rlm)", "result": "True"},  # `rlm` is there without an import
    )
    code_display_data = (
        {"code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
         "mime": "text/html"},
        {"code": "from IPython.display import Math, display; display(Math('\\\\frac{1}{2}'))",
         "mime": "text/latex"},
    )
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")  # not "range": IPython reports session 0
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    @classmethod
    def setUpClass(cls) -> None:
        cls._stack = ExitStack()
        root = Path(cls._stack.enter_context(tempfile.TemporaryDirectory(prefix="rlm-conformance-")))
        work = cls._stack.enter_context(jupyter_sandbox(root))
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, cwd=str(work))

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls._stack.close()

    def test_kernel_info_names_the_rlm_kernel(self) -> None:
        self.flush_channels()
        msg_id = self.kc.kernel_info()
        reply = self.kc.get_shell_msg(timeout=jupyter_kernel_test.TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        content = reply["content"]
        self.assertEqual(content["implementation"], "rlm_kernel")
        self.assertEqual(content["implementation_version"], __version__)
        self.assertEqual(content["language_info"]["name"], "python")
        self.assertIn("%%rlm", content["banner"])
        self.assertNotIn("debugger", content.get("supported_features", []))  # not claimed: not tested
        self.assertFalse(content.get("debugger", False))

    def test_magics_complete_and_inspect(self) -> None:
        self.flush_channels()
        self.kc.complete("%rl")
        reply = self.get_non_kernel_info_reply(timeout=jupyter_kernel_test.TIMEOUT)
        self.assertIn("%rlm", reply["content"]["matches"])
        reply, _ = self.execute_helper("%%rlm?")
        self.assertEqual(reply["content"]["status"], "ok")
        pages = [p for p in reply["content"]["payload"] if p["source"] == "page"]
        self.assertIn("Ask the question", pages[0]["data"]["text/plain"])
