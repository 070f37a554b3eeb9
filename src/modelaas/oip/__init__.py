"""The Open Inference Protocol (KServe V2 / Triton): the tensor codec and data plane shared by REST and gRPC."""
