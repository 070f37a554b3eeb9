-- POST the body in BENCH_BODY with the content type in BENCH_CONTENT_TYPE (default JSON)
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or ""
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
