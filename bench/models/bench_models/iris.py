"""A fitted scikit-learn iris classifier as a typed modelaas model with tensors (the OIP benchmark).

The model file is the one MLServer's ``mlserver-sklearn`` serves in the same run: its path
is in ``BENCH_IRIS_MODEL`` (bench/oip_bench.py trains it with the MLServer environment's
scikit-learn and saves it with joblib).
"""

from __future__ import annotations

import os
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelaas import Input, Model, Output


class Iris(Model):
    """Iris species from sepal and petal length and width (scikit-learn)."""

    metadata = {"version": "1"}

    def warm(self) -> None:
        import joblib

        self.model = joblib.load(os.environ["BENCH_IRIS_MODEL"])

    def predict(
        self, x: NDArray[np.float32] = Input(shape=(-1, 4), description="sepal/petal length/width rows")
    ) -> Annotated[NDArray[np.int64], Output("predict", shape=(-1,))]:
        return self.model.predict(x)
