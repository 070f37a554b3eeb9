"""A v1 model written for DEEPaaS 1.x that answers what it was handed (the dict form).

``predict_data(args)`` reads the first upload's bytes with ``read()`` and answers the
keys of the dict, the upload's surface and the test arguments it found; ``predict_url``
and ``train`` answer their dict the same way. Nothing here indexes an argument that the
client may leave out, so both servers answer even where they fill the dict differently.
"""

import hashlib

from compat_v1 import arg, pkg_info


def get_metadata():
    return pkg_info("compat-v1-inspector", "Answers the dict DEEPaaS 1.x handed to it.")


def get_test_args():
    return {
        "threshold": arg("0.5", "Lowest score reported."),
        "top_k": arg("3", "How many labels to report."),
    }


def get_train_args():
    return {
        "epochs": arg("2", "Passes over the data."),
        "lr": arg("0.01", "Learning rate."),
    }


def _given(args, declared):
    return {name: args[name] for name in declared if name in args}


def predict_data(args):
    upload = args["files"][0]
    content = upload.read()
    return {
        "keys": sorted(args),
        "files": len(args["files"]),
        "filenames": [f.filename for f in args["files"]],
        "data_filename": args["data"].filename,
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content_type": upload.content_type,
        "urls": args["urls"],
        "args": _given(args, get_test_args()),
    }


def predict_url(args):
    return {"keys": sorted(args), "urls": args["urls"], "url": args["url"], "args": _given(args, get_test_args())}


def predict_file(*args):
    return "Not implemented"


def train(args):
    return {"keys": sorted(args), "args": _given(args, get_train_args())}
