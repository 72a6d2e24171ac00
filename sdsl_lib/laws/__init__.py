"""The paper's laws and fits: numpy in, numpy out, no I/O and no torch.

``speculation``  Leviathan's speed-up (Eq. 1), throughput per FLOP (Eq. 3-4), the optimal lookahead (Eq. 13)
``acceptance``   the alpha plane in perplexities (Eq. 5), Table 4's per-target fits, App. B's TAR inverse
``pretraining``  Chinchilla-form laws (Eq. 2, 7, 8) and their fit
``optimal``      the chain from (N, M, D, D') to throughput and the optimal draft N* (Eq. 9-11, Tables 8-9)
``constants``    every published constant, with its citation
``simulate``     simulated speculative decoding with a known alpha, to test estimators
"""
