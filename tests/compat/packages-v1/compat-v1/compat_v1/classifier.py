"""An image classifier as 2019 v1 models were written (the dict form of DEEPaaS 0.5 to 1.3).

``predict_data(args)`` opens the upload itself with ``PIL.Image.open(args["files"][0])``
and reads its test arguments by indexing the dict (``args["top_k"]``), as the models of
the time did: a value the client does not send is expected to hold its declared default.
The "probabilities" are the shares of the red, green and blue channels in the image.
``predict_url(args)`` takes the list ``args["urls"]`` and only parses the URLs (it reports
the file name each would give); ``predict_file`` is the model template's stub.
"""

import json
import posixpath
from urllib.parse import urlparse

from PIL import Image

from compat_v1 import arg, pkg_info

LABELS = ("red", "green", "blue")


def get_metadata():
    return pkg_info("compat-v1-classifier", "Colour classifier, a v1 model in the DEEPaaS 1.x dict form.")


def get_test_args():
    return {
        "threshold": arg("0.0", "Lowest probability reported."),
        "top_k": arg("2", "How many labels to report."),
    }


def get_train_args():
    return {
        "num_epochs": arg("3", "Epochs (a JSON number)."),
        "use_augmentation": arg("false", "Augment the images (JSON boolean)."),
    }


def _classify(image, threshold, top_k):
    rgb = image.convert("RGB")
    sums = [sum(rgb.getchannel(band).getdata()) for band in ("R", "G", "B")]
    total = sum(sums) or 1
    ranked = sorted(((LABELS[i], s / total) for i, s in enumerate(sums)), key=lambda pair: -pair[1])
    return [{"label": label, "probability": round(p, 6)} for label, p in ranked[:top_k] if p >= threshold]


def predict_data(args):
    threshold = float(args["threshold"])
    top_k = int(args["top_k"])
    image = Image.open(args["files"][0])
    return {
        "status": "ok",
        "predictions": _classify(image, threshold, top_k),
        "image": {"format": image.format, "mode": image.mode, "size": list(image.size)},
    }


def predict_url(args):
    found = [{"url": url, "file": posixpath.basename(urlparse(url).path)} for url in args["urls"]]
    return {"status": "ok", "predictions": found}


def predict_file(*args):
    return "Not implemented"


def train(args):
    epochs = json.loads(args["num_epochs"])
    augment = json.loads(args["use_augmentation"])
    return {"status": "done", "epochs": epochs, "augmentation": augment}
