"""Host-side export: torch -> ONNX, quantization, parity (needs the `export` extra)."""
