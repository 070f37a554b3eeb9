"""A v1 model written for DEEPaaS 0.5 to 1.3 behind ``predict_data(*args, **kwargs)``.

Several 2019 models took the one dict DEEPaaS passed as ``args[0]`` behind a signature
that also accepts keywords (DEEPaaS never passed any), and walked every dict and every
file in it. This one answers each file's name and size, each URL's host, and the
keywords it was given.
"""

from urllib.parse import urlparse


def get_metadata():
    return {"name": "compat-v1-batch", "version": "0.1.0", "description": "Walks every dict and file it is given."}


def predict_file(path):
    return "Not implemented in the model (predict_file)"


def predict_data(*args, **kwargs):
    found = []
    for arg in args:
        files = arg["files"]
        if not isinstance(files, list):
            files = [files]
        for upload in files:
            found.append({"name": upload.filename, "bytes": len(upload.read())})
    return {"status": "ok", "files": found, "keywords": sorted(kwargs)}


def predict_url(*args, **kwargs):
    hosts = [urlparse(url).hostname for arg in args for url in arg["urls"]]
    return {"status": "ok", "hosts": hosts, "keywords": sorted(kwargs)}
