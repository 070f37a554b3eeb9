"""demo-app: a demonstration model for the DEEPaaS v2 interface."""
