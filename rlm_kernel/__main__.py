"""`python -m rlm_kernel` (or `rlm-kernel`) starts the kernel (Jupyter runs this with `-f <connection
file>`); `install [--user|--sys-prefix|--prefix P]` installs its kernelspec; `--help` says all that."""

from __future__ import annotations

import sys

from . import __version__

HELP = f"""\
rlm-kernel {__version__}: Recursive Language Models as a Jupyter kernel.

Install the kernel for Jupyter (after `pip install rlm-kernel`):
  rlm-kernel install [--user | --sys-prefix | --prefix P]    (install --help for details)
then pick "RLM (Python 3)" in JupyterLab or Notebook. Jupyter starts the kernel itself as
  python -m rlm_kernel -f CONNECTION_FILE

In a notebook on that kernel, put the input in a variable named `context` and ask:
  %%rlm --max-iterations 20
  What are the key trends?
`%%rlm --help` lists the options, `%rlm help` the other commands (config, runs, show, resume, export, replay).

Runs are logged as they happen to ./rlm_runs/<run_id>.jsonl (the kernel's folder, usually the
notebook's; RLM_RUNS_DIR moves it), with the run's context saved beside each log.
Defaults: c.RLMKernel.<option> in rlm_kernel_config.py, RLM_<OPTION> environment variables, %rlm config.
The API key comes from the kernel's environment (ANTHROPIC_API_KEY) and is never recorded;
`--model demo` needs none. From a script: from rlm_kernel import rlm; rlm("question", context=data)."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["install"]:
        from .kernel.install import main as install_main

        return install_main(args[1:])
    if args[:1] == ["help"] or any(a in ("-h", "--help") for a in args):
        print(HELP)
        return 0
    from .kernel.app import RLMKernelApp

    RLMKernelApp.launch_instance(argv=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
