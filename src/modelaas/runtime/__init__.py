"""The core every transport shares (DEEPaaS REST, the CLI; OIP next): the models of one
process and how predictions run.

* :mod:`~modelaas.runtime.core`: :class:`Runtime`: list, warm, predict (validate, check and
  fetch URL inputs, call the model, shape the answer);
* :mod:`~modelaas.runtime.gate`: admission (concurrency, wait queue, timeout, departed clients);
* :mod:`~modelaas.runtime.model_threads`: the thread where sync model code runs;
* :mod:`~modelaas.runtime.answers`: an answer independent of any transport;
* :mod:`~modelaas.runtime.media`: content negotiation.

No web, gRPC or CLI imports in this package.
"""

from modelaas.runtime.core import Runtime

__all__ = ["Runtime"]
