"""seed-model: a tiny text-statistics model written for the DEEPaaS v1 interface."""
