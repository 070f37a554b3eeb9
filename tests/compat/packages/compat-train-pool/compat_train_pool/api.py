"""A training that preprocesses its data with a fresh ``multiprocessing.Pool`` per round.

Data loaders of real models open a pool of forked workers for each epoch (``fork`` is
what ``multiprocessing.Pool()`` uses on Linux before Python 3.14). Leaving the ``with``
block terminates the pool: workers still alive get SIGTERM, so whatever signal handling
the training process installed is inherited by them. ``hold`` makes each task sleep, to
catch a training while it is inside a pool; with ``pid_dir`` the training and each pool
worker leave an empty file named after their role and process id there.
"""

import functools
import multiprocessing
import os
import time
from pathlib import Path

from marshmallow import fields, validate

TASKS = 8


def get_metadata():
    return {"description": "Trains with a multiprocessing pool per round.", "version": "0.1.0"}


def get_train_args():
    return {
        "rounds": fields.Int(load_default=40, validate=validate.Range(min=1, max=1000)),
        "workers": fields.Int(load_default=2, validate=validate.Range(min=1, max=8)),
        "hold": fields.Float(load_default=0.0, metadata={"description": "Seconds each task sleeps."}),
        "pid_dir": fields.Str(load_default="", metadata={"description": "Where to leave <role>-<pid> files."}),
    }


def _mark(pid_dir, role):
    if pid_dir:
        Path(pid_dir, f"{role}-{os.getpid()}").touch()


def _task(hold, pid_dir, number):
    _mark(pid_dir, "worker")
    if hold:
        time.sleep(hold)
    return number * number


def train(rounds, workers, hold, pid_dir):
    _mark(pid_dir, "training")
    fork = multiprocessing.get_context("fork")
    total = 0
    for _ in range(rounds):
        with fork.Pool(workers) as pool:
            total += sum(pool.map(functools.partial(_task, hold, pid_dir), range(TASKS)))
    return {"rounds": rounds, "sum_of_squares": total}
