"""Helpers for runs on the GPU machine (docs/gpu.md): carrying files in chunks, timing one step."""
