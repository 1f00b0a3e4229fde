"""Benchmarks that run on the device: latency, memory, size (numpy + onnxruntime only)."""
