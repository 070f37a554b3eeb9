"""Which of the model's functions ran in the process that answers?

Every function records its name in the module-level list ``RAN``. ``predict`` and
``train`` answer the names recorded before them that are not themselves a predict or a
train: the preparation the process went through. DEEPaaS 2.6.0 runs ``get_*_args()`` in
its main process only and ``warm()`` then ``predict``/``train`` in a worker process, so
both answer ``["warm"]`` whatever was asked before.
"""

RAN = []
CALLS = ("predict", "train")


def _preparation():
    return [name for name in RAN if name not in CALLS]


def get_metadata():
    return {"description": "Says which of its functions ran in the process that answers.", "version": "0.1.0"}


def get_predict_args():
    RAN.append("get_predict_args")
    return {}


def get_train_args():
    RAN.append("get_train_args")
    return {}


def warm():
    RAN.append("warm")


def predict(**kwargs):
    RAN.append("predict")
    return _preparation()


def train(**kwargs):
    RAN.append("train")
    return _preparation()
