"""An object detector as 2019 v1 models were written (the dict form of DEEPaaS 0.5 to 1.3).

``predict_data(args)`` saves the upload with ``args["files"][0].save(path)`` under its
client file name, opens the saved file with PIL and answers one "detection": the box
around the pixels that are not black. Its ``outputpath`` test argument names a folder for
an annotated copy, which is written only when the argument is not empty.
"""

import os
import tempfile

from PIL import Image

from compat_v1 import arg, pkg_info


def get_metadata():
    return pkg_info("compat-v1-detector", "Box detector, a v1 model in the DEEPaaS 1.x dict form.")


def get_test_args():
    return {
        "outputpath": arg("", "Folder for an annotated copy (none when empty)."),
        "min_score": arg("0.3", "Lowest score reported."),
    }


def predict_data(args):
    upload = args["files"][0]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, os.path.basename(upload.filename))
        upload.save(path)
        saved = os.path.getsize(path)
        with Image.open(path) as image:
            box = image.convert("L").getbbox()
            size = list(image.size)
    detections = []
    if box is not None:
        area = (box[2] - box[0]) * (box[3] - box[1])
        score = round(area / (size[0] * size[1]), 6)
        if score >= float(args.get("min_score", "0.3")):
            detections.append({"label": "object", "box": list(box), "score": score})
    return {"file": upload.filename, "saved_bytes": saved, "size": size, "detections": detections}


def predict_url(args):
    raise NotImplementedError()


def predict_file(*args):
    return "Not implemented"
