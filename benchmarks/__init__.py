"""Benchmarks: rlm-kernel side by side with the paper authors' `rlms` and `dspy.RLM`.

`python -m benchmarks.run` runs them all against a loopback fake model server; see README.md."""
