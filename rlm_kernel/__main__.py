"""`python -m rlm_kernel` starts the kernel (Jupyter runs this with `-f <connection file>`);
`python -m rlm_kernel install [--user|--sys-prefix|--prefix P]` installs its kernelspec."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["install"]:
        from .kernel.install import main as install_main

        return install_main(args[1:])
    from .kernel.app import RLMKernelApp

    RLMKernelApp.launch_instance(argv=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
