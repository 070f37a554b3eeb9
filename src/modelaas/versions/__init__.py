"""Versions of a model and what each model serves.

A *version* is a numbered set of artefacts (files under ``<data dir>/versions/<model>/<n>/``)
with its metadata, registered from a finished training or imported. The *serving state* of
a model is its active version (or none: the model warms as it always did) and a
*generation*, a counter raised by every activation and every reload request. Each server
watches the generations in the job store and replaces its serving processes, one at a time,
when one changes (a rolling reload), so every server on one store follows an activation.
"""
