"""The real DEEPaaS model packages that ``scripts/compat-real`` installs from PyPI, and how to drive them.

Each ``Recipe`` says what to install (with the model's own pins), which Python runs it, and how to
prepare a working directory the model can serve from without downloading anything at run time:
the helper programs below run inside the model's own virtualenv (its TensorFlow, its PIL) and
write weights, inputs and training data that the model then reads like any user's.

Nothing here is the models' code: they are installed from PyPI into their own virtualenvs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------------------- helper programs
# Run as ``<venv>/bin/python -c PROGRAM WORKDIR`` with the work directory as the current
# directory. They use only what the model package itself installs.

# A small RGB image, made with the model's own PIL/numpy (seeded, so every run sends the same bytes).
MAKE_IMAGE = r"""
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(7)
pixels = (rng.random((64, 64, 3)) * 255).astype("uint8")
Image.fromarray(pixels).save(sys.argv[1])
"""

# planktonclas / planktonclass keep models under ``models/<timestamp>/`` beside their config file
# (given by an environment variable, as the packages' own ``api --config`` command does) and look for a
# local base network under ``models/<modelname>/ckpts`` before asking Keras for ImageNet weights
# (a download this machine cannot make). So: build a tiny Keras network as the base
# ``models/MobileNet``, run the package's own training function once on a few of the images the
# wheel ships, and name that run ``models/VGG16``: the last "timestamp" in sort order, so the one
# prediction and warm() load. A training through the API with ``modelname="MobileNet"`` then starts
# from the same tiny base (starting from the trained run fails in the model's own code: it adds a
# second layer named "new_dense").
PLANKTON_FIXTURE = r"""
import glob, json, os, shutil, sys
pkg = sys.argv[1]
work = os.getcwd()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import importlib, importlib.util
package_dir = os.path.dirname(importlib.util.find_spec(pkg).origin)
resources = os.path.join(package_dir, "resources", "demo-images")
config = os.environ[pkg.upper() + "_CONFIG"] if pkg.upper() + "_CONFIG" in os.environ else os.environ[pkg + "_CONFIG"]
shutil.copy(os.path.join(package_dir, "resources", "config.yaml"), config)
images = os.path.join(work, "data", "images")
if not os.path.isdir(images):
    for cls in sorted(os.listdir(resources))[:3]:
        os.makedirs(os.path.join(images, cls))
        for path in sorted(glob.glob(os.path.join(resources, cls, "*.jpg")))[:6]:
            shutil.copy(path, os.path.join(images, cls))
import tensorflow as tf
base = os.path.join(work, "models", "MobileNet")
served = os.path.join(work, "models", "VGG16")
for d in (base, served):
    if os.path.isdir(d):
        shutil.rmtree(d)
os.makedirs(os.path.join(base, "ckpts"))
tf.keras.utils.set_random_seed(0)
inp = tf.keras.Input(shape=(32, 32, 3))
x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inp)
x = tf.keras.layers.GlobalAveragePooling2D()(x)
x = tf.keras.layers.Dense(8, activation="relu")(x)
tf.keras.Model(inp, x).save(os.path.join(base, "ckpts", "base.keras"))
api = importlib.import_module(pkg + ".api")
defaults = {k: v.load_default for k, v in api.get_train_args().items()}
args = dict(defaults)
args.update({
    "images_directory": json.dumps(images), "modelname": json.dumps("MobileNet"), "image_size": "32",
    "epochs": "1", "batch_size": "4", "use_validation": "false", "use_test": "false",
    "use_early_stopping": "false", "use_tensorboard": "false", "use_augmentation": "false",
    "split_ratios": "[1.0, 0.0, 0.0]", "lr_schedule_mode": json.dumps("none"),
})
args = {k: v for k, v in args.items() if k in defaults}
print("fixture train result:", api.train(**args))
runs = [d for d in os.listdir(os.path.join(work, "models")) if d != "MobileNet"]
assert len(runs) == 1, runs
shutil.move(os.path.join(work, "models", runs[0]), served)
print("fixture model:", sorted(os.listdir(os.path.join(served, "ckpts"))))
"""


@dataclass(frozen=True)
class Recipe:
    """One real model package: what to install and how to exercise it under both servers."""

    label: str  # row name in docs/compatibility.md
    requirement: str  # pip requirement, pinned to one release
    model_name: str  # entry-point name: the name in URLs
    interface: str  # "v2" or "v1"
    python: str = "3.11"
    source: str = ""  # where the package comes from (for the docs)
    fixture: str = ""  # helper program run once per venv in the work dir (argv[1] = fixture_arg)
    fixture_arg: str = ""
    predict_file_field: str = ""  # multipart field that carries the generated image
    predict_zip_field: str = ""  # multipart field that takes a zip of images, if any
    predict_query: dict[str, str] = field(default_factory=dict)
    # A train submission that runs on tiny local data; {work} is replaced by the work dir.
    train_query: dict[str, str] = field(default_factory=dict)
    train_timeout: float = 600.0
    # A line the training logs on its way (the model's own words), and what reaching it proves.
    train_log_marker: str = ""
    train_log_note: str = ""
    # A log line that says warm() loaded the weights (the model's own words).
    warm_marker: str = ""
    env: dict[str, str] = field(default_factory=dict)  # "{work}" is replaced by the working directory
    # Set when starting from an empty directory says something about the model (why it is checked).
    bare_start_note: str = ""

    @property
    def slug(self) -> str:
        return self.requirement.replace("==", "-").replace("[", "_").replace("]", "") + f"-py{self.python}"


def _plankton(dist: str, version: str, note: str, config_var: str) -> Recipe:
    return Recipe(
        label=f"{dist} {version}",
        requirement=f"{dist}=={version}",
        model_name=dist,
        interface="v2",
        python="3.11",
        source=note,
        fixture=PLANKTON_FIXTURE,
        fixture_arg=dist,
        predict_file_field="image",
        predict_zip_field="zip_data",
        bare_start_note="get_predict_args() lists ./models with next(os.walk(...)): StopIteration without it",
        train_query={
            "images_directory": '"{work}/data/images"',
            "modelname": '"MobileNet"',
            "image_size": "32",
            "epochs": "1",
            "batch_size": "4",
            "use_validation": "false",
            "use_test": "false",
            "use_early_stopping": "false",
            "use_tensorboard": "false",
            "use_augmentation": "false",
            "split_ratios": "[1.0, 0.0, 0.0]",
            "lr_schedule_mode": '"none"',
        },
        train_log_marker="RGB standard deviation",
        train_log_note="computed in a multiprocessing.Pool(4) inside the training process",
        warm_marker="Model fully loaded",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", config_var: "{work}/config.yaml"},
    )


RECIPES: list[Recipe] = [
    _plankton(
        "planktonclas",
        "0.2.4",
        "PyPI; phytoplankton image classifier (TensorFlow 2.19, Keras 3) from ai4os-hub; pins deepaas==2.3.2, "
        "webargs==5.5.3, marshmallow==3.26.2, aiohttp==3.13.4",
        "PLANKTONCLAS_CONFIG",
    ),
    _plankton(
        "planktonclass",
        "0.1.5",
        "PyPI; a separately published fork of planktonclas with its own pins (jupyterlab, nbconvert...); "
        "deepaas==2.3.2",
        "planktonclass_CONFIG",
    ),
    _plankton(
        "planktonclas",
        "0.2.0",
        "PyPI; an older release with older pins: aiohttp==3.11.16, marshmallow==3.21.1, deepaas==2.3.2",
        "PLANKTONCLAS_CONFIG",
    ),
]


SEARCH_NOTES = """
Candidates came from PyPI's package list and from the entry points (`deepaas.v2.model`,
`deepaas.model`) declared in the `setup.cfg`/`pyproject.toml` of public AI4OS and DEEP-Hybrid-DataCloud
model repositories (deephdc/*, ai4os-hub/*), whose distribution names were then looked up on PyPI.

- On PyPI with a DEEPaaS entry point: `planktonclas` (0.2.0 to 0.2.4) and `planktonclass` (0.1.0 to
  0.1.5), both `deepaas.v2.model`, both pinning `deepaas==2.3.2` and TensorFlow 2.19. Three releases
  with different pin sets are rows above.
- Not on PyPI (the models are shipped as Docker images built from Git): the distributions of
  deephdc/image-classification-tf (`imgclas`), audio-classification-tf (`audioclas`), speech-to-text-tf,
  posenet-tf, semseg_vaihingen, dogs_breed_det, mods, satsr, conex-generator, fasterrcnn_pytorch_api,
  obj_detect_pytorch, benchmarks_cnn_api, demo_app, and of ai4os-hub/ai4os-demo-app (`ai4os_demo_app`),
  zooprocess-multiple-classifier (`ai4os-zooprocess_multiple_classifier`), obsea-fish-detection
  (`obsea-drift-detection`), thermal-anomaly-segmenter, integrated-plant-protection,
  litter-assessment (`litter_assessment_service`), sentinel-data-fusion, eyeonwater-yolo
  (`eyeonwater-yolov8`). `neural-transfer` on PyPI is an unrelated package without an entry point.
- v1 models (`deepaas.model`, DEEPaaS <= 1.3): none found on PyPI. The v1 "dict form"
  (`predict_data(args)` with `args["files"]` as FileStorage objects) is therefore checked only by the
  test suite's own models, not by a published package.
"""
