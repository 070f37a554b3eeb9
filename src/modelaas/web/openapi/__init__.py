"""The API documents, built from the route settings and the models' parameter descriptions:
OpenAPI 3.1 (:mod:`~modelaas.web.openapi.document`, at ``/openapi.json`` and ``/api``) and
Swagger 2.0 in DEEPaaS's shapes (:mod:`~modelaas.web.openapi.swagger2`, at ``/swagger.json``).
Parts: predict operations and shared pieces (:mod:`~modelaas.web.openapi.models`), train
routes (:mod:`~modelaas.web.openapi.train`), tokens (:mod:`~modelaas.web.openapi.security`).
"""
