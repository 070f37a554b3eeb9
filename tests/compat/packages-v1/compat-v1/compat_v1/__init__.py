"""Compatibility corpus: v1 models in the dict form of DEEPaaS 0.5 to 1.3, and one in the seed's form."""


def pkg_info(name, summary):
    """Metadata in the PKG-INFO style 2019 v1 models answered (read from their package)."""
    return {"Name": name, "Version": "0.1.0", "Summary": summary, "Author": "modelaas tests", "License": "Apache-2"}


def arg(default, help_text):
    """One v1 argument: a dict with a string default, as the seed describes."""
    return {"default": default, "help": help_text, "required": False}
