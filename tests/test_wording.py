"""Counts in messages agree with their nouns and verbs ("1 line is", "2 lines are")."""

import pytest

from modelaas.cli.remote import ended
from modelaas.jobs.logs import missing_marker
from modelaas.jobs.store import QueueFull


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "1 line of output is missing here: the job store could not take it in time"),
        (3, "3 lines of output are missing here: the job store could not take them in time"),
    ],
)
def test_the_missing_lines_marker(count, text):
    assert text in missing_marker(count)


def test_queue_full():
    assert str(QueueFull(1)) == "1 job is queued already" and str(QueueFull(2)) == "2 jobs are queued already"


def test_how_a_remote_training_ended():
    assert ended("j1", "error", "boom") == "Training job j1 failed: boom"
    assert ended("j1", "cancelled", None) == "Training job j1 was cancelled."
    assert ended("j1", "interrupted", "The server stopped.") == "Training job j1 was interrupted: The server stopped."
