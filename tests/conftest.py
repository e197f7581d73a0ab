"""Shared test set-up: tests never reach a model hub, and torch runs one thread.

One thread per process (the engines the tests start inherit it): on a machine whose
cores are busy with other work, OpenMP's threads wait on each other and a tiny-model
step that takes 0.08 s alone took 20 s. Speed is measured in ``benchmarks/``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
