"""Compatibility corpus: smaller habits of real DEEPaaS v2 models."""
