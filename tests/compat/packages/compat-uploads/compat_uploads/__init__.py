"""Compatibility corpus: uploads checked with isinstance against DEEPaaS's class."""
