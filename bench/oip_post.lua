-- POST an Open Inference Protocol JSON infer request (one iris row) to the URL wrk is given.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[5.9,3.0,5.1,1.8]}]}'
