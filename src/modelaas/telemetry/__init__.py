"""What an operator sees: log records with request and job ids, Prometheus metrics, traces."""
