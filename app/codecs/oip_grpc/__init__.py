"""The Open Inference Protocol's gRPC definition (``open_inference_grpc.proto``, vendored with
its origin in ``SOURCE.md``) and its generated messages, in a descriptor pool of their own."""
