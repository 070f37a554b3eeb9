"""URL inputs: where a URL may lead (:mod:`~modelaas.fetch.destinations`), the guarded
downloader (:mod:`~modelaas.fetch.download`), and fetching a request's URL inputs before the
model is called (:mod:`~modelaas.fetch.inputs`). The only network I/O modelaas does for clients."""
