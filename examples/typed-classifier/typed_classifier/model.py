"""A nearest-centroid classifier over a small built-in flower data set, in pure Python.

``warm()`` computes one centroid per class (or, when a registered version is active, reads
the centroids its training saved: ``self.artefacts``, docs/versions.md); ``predict`` ranks
the classes by distance to their centroids; ``train`` refits the centroids by gradient
steps, reporting progress, and saves them in its output folder.
"""

from __future__ import annotations

import json
import math
from typing import Literal

from pydantic import BaseModel

from modelaas import Input, Model, TrainingContext

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

# A few measurements (cm) per class, in the order of FEATURES.
SAMPLES: dict[str, list[tuple[float, float, float, float]]] = {
    "setosa": [(5.1, 3.5, 1.4, 0.2), (4.9, 3.0, 1.4, 0.2), (4.7, 3.2, 1.3, 0.2), (5.0, 3.6, 1.4, 0.2)],
    "versicolor": [(7.0, 3.2, 4.7, 1.4), (6.4, 3.2, 4.5, 1.5), (6.9, 3.1, 4.9, 1.5), (5.5, 2.3, 4.0, 1.3)],
    "virginica": [(6.3, 3.3, 6.0, 2.5), (5.8, 2.7, 5.1, 1.9), (7.1, 3.0, 5.9, 2.1), (6.5, 3.0, 5.8, 2.2)],
}

Metric = Literal["euclidean", "manhattan"]


class Neighbour(BaseModel):
    label: str
    distance: float


class Prediction(BaseModel):
    label: str
    """The class whose centroid is nearest."""
    neighbours: list[Neighbour]
    """The ``k`` nearest classes, nearest first."""
    metric: Metric


def _distance(a: list[float], b: list[float], metric: str) -> float:
    if metric == "manhattan":
        return sum(abs(x - y) for x, y in zip(a, b, strict=True))
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def _mean(rows: list[tuple[float, ...]]) -> list[float]:
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)]


class Classifier(Model):
    """Nearest-centroid classifier of iris flowers from four measurements (cm)."""

    metadata = {
        "summary": "Nearest-centroid iris classifier (a modelaas typed-model example).",
        "license": "Apache-2.0",
        "features": list(FEATURES),
        "labels": list(SAMPLES),
    }

    def __init__(self) -> None:
        self.centroids: dict[str, list[float]] = {}

    def warm(self) -> None:
        saved = self.artefacts / "centroids.json" if self.artefacts is not None else None
        if saved is not None and saved.is_file():  # a registered version is active: its training's centroids
            self.centroids = json.loads(saved.read_text(encoding="utf-8"))["centroids"]
            return
        self.centroids = {label: _mean(rows) for label, rows in SAMPLES.items()}

    def predict(
        self,
        features: list[float] = Input(
            description="sepal length, sepal width, petal length, petal width (cm)",
            min_length=len(FEATURES),
            max_length=len(FEATURES),
        ),
        k: int = Input(1, ge=1, le=5, description="How many classes to rank (at most the number of classes)."),
        metric: Metric = "euclidean",
    ) -> Prediction:
        if not self.centroids:
            self.warm()
        neighbours = (
            Neighbour(label=label, distance=round(_distance(features, centroid, metric), 6))
            for label, centroid in self.centroids.items()
        )
        ranked = sorted(neighbours, key=lambda n: n.distance)
        return Prediction(label=ranked[0].label, neighbours=ranked[:k], metric=metric)

    def train(
        self,
        context: TrainingContext,
        epochs: int = Input(3, ge=1, le=50, description="Passes over the built-in data."),
        learning_rate: float = Input(0.5, gt=0, le=1, description="Step towards each sample."),
    ) -> dict[str, object]:
        centroids = {label: [0.0] * len(FEATURES) for label in SAMPLES}
        loss = math.inf
        for epoch in range(1, epochs + 1):
            if context.cancelled:
                break
            total = 0.0
            count = 0
            for label, rows in SAMPLES.items():
                for row in rows:
                    c = centroids[label]
                    for i, x in enumerate(row):
                        c[i] += learning_rate * (x - c[i])
                    total += _distance(list(row), c, "euclidean") ** 2
                    count += 1
            loss = total / count
            context.report(progress=epoch / epochs, loss=round(loss, 6), epoch=epoch)
        self.centroids = centroids
        path = context.output_dir / "centroids.json"
        context.output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"features": list(FEATURES), "centroids": centroids}, indent=2), encoding="utf-8")
        return {"epochs": epochs, "loss": round(loss, 6), "centroids_file": path.name}
