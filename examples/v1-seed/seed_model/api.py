"""The DEEPaaS v1 API of seed-model (entry point group ``deepaas.model``).

Every function here follows the v1 interface as its users describe it:

* ``get_metadata()`` returns PKG-INFO style keys;
* ``get_train_args()`` / ``get_test_args()`` return a dict of dicts whose defaults are
  strings (JSON-encoded Python values);
* the model receives those values as strings and turns them back with ``json.loads``.

The "model" counts bytes, lines and words of a text and reports its most common words;
training "fits" the mean (or median) of a list of numbers and returns it.
"""

import collections
import json
import re
import statistics
import urllib.parse

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def get_metadata():
    return {
        "Name": "seed-model",
        "Version": "0.1.0",
        "Summary": "Counts bytes, lines and words of a text file (a DEEPaaS v1 example).",
        "Author": "modelaas developers",
        "License": "Apache-2.0",
    }


def get_train_args():
    return {
        "values": {
            "default": json.dumps([1.0, 2.0, 3.0, 4.0]),
            "help": "A JSON list of numbers to fit the mean of.",
            "required": False,
        },
        "scale": {
            "default": json.dumps(1.0),
            "help": "Multiply every value by this number before fitting.",
            "required": False,
        },
        "use_median": {
            "default": json.dumps(False),
            "help": "Fit the median instead of the mean (true/false).",
            "required": False,
        },
    }


def get_test_args():
    return {
        "top_words": {
            "default": json.dumps(3),
            "help": "How many of the most common words to report.",
            "required": False,
        },
        "lowercase": {
            "default": json.dumps(True),
            "help": "Count words case-insensitively (true/false).",
            "required": False,
        },
    }


def _options(kwargs):
    top = int(json.loads(kwargs.get("top_words", "3")))
    lowercase = bool(json.loads(kwargs.get("lowercase", "true")))
    return max(0, top), lowercase


def _describe(raw, **kwargs):
    top, lowercase = _options(kwargs)
    text = raw.decode("utf-8", errors="replace")
    words = _WORD.findall(text.lower() if lowercase else text)
    counts = collections.Counter(words)
    return {
        "bytes": len(raw),
        "lines": len(text.splitlines()),
        "words": len(words),
        "top_words": [{"word": w, "count": n} for w, n in counts.most_common(top)],
    }


def predict_file(path, **kwargs):
    """Describe the text file at ``path`` (a local path given by the server)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    return _describe(raw, **kwargs)


def predict_data(data, **kwargs):
    """Describe raw ``data`` (bytes or text) passed in the request."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _describe(bytes(data), **kwargs)


def predict_url(url, **kwargs):
    """Describe a URL without fetching it: its parts, as parsed."""
    parts = urllib.parse.urlsplit(url)
    return {
        "url": url,
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": parts.port,
        "path": parts.path,
        "query": urllib.parse.parse_qs(parts.query),
        "fragment": parts.fragment,
    }


def train(user_conf):
    """Fit the mean (or median) of ``values``; ``user_conf`` values are JSON strings."""
    values = json.loads(user_conf.get("values", "[]"))
    scale = float(json.loads(user_conf.get("scale", "1.0")))
    use_median = bool(json.loads(user_conf.get("use_median", "false")))
    if not isinstance(values, list) or not values:
        raise ValueError("'values' must be a non-empty JSON list of numbers")
    scaled = [float(v) * scale for v in values]
    fitted = statistics.median(scaled) if use_median else statistics.fmean(scaled)
    return {"fitted": fitted, "statistic": "median" if use_median else "mean", "samples": len(scaled)}
