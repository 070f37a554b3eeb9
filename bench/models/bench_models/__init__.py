"""Benchmark models: the same code under DEEPaaS 2.6.0 and modelaas."""
