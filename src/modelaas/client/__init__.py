"""The Python client of a modelaas (or DEEPaaS) server: :class:`Client` over HTTP
(:mod:`~modelaas.client.http`), training jobs and their event streams (:mod:`~modelaas.client.jobs`)."""

from modelaas.client.http import Client
from modelaas.client.jobs import Event, Job

__all__ = ["Client", "Event", "Job"]
