"""Run a render plan (``engine.plan``) on one machine, a Ray cluster or a render farm.

``python -m engine.farm local|ray|openjd|task …`` (see ``__main__``).  Every
backend runs the same unit, ``task.run_task``: one engine process per task,
which continues the frames of an earlier try, so a retried task finishes the
shot exactly as one uninterrupted run would.  Ray and the OpenJD tools are
optional (``requirements-farm.txt``); nothing outside this package imports
them.
"""
