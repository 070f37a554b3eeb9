"""Training jobs: durable records, a store, and backends that run them."""
