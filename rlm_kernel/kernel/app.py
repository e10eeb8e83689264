"""The kernel application: ipykernel's, launching RLMKernel and reading its config files."""

from __future__ import annotations

from ipykernel.kernelapp import IPKernelApp
from jupyter_core.paths import jupyter_config_path
from traitlets import Type, default

from .kernel import RLMKernel


class RLMKernelApp(IPKernelApp):
    name = "rlm-kernel"
    kernel_class = Type(RLMKernel, klass="ipykernel.kernelbase.Kernel",
                        help="The kernel class to launch.").tag(config=True)

    @default("config_files")
    def _config_files_default(self) -> list[str]:
        # The standard IPython kernel file first, so settings shared with python3 kernels apply,
        # then ours (both may hold c.RLMKernel.*).
        return ["ipython_kernel_config.py", "rlm_kernel_config.py"]

    def init_config_files(self) -> None:
        """Also look in the Jupyter config path (~/.jupyter, <prefix>/etc/jupyter, ...), after the
        IPython profile, which keeps priority."""
        super().init_config_files()
        for path in jupyter_config_path():
            if path not in self.config_file_paths:
                self.config_file_paths.append(path)
