"""Bounds on long-lived answers a serving process holds open (training event streams)."""

from __future__ import annotations


class StreamSlots:
    """How many event streams a serving process may hold open, and holds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1
