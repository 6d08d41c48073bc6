"""The genre classification service (FastAPI + ONNX Runtime; no torch)."""
