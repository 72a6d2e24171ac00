"""Analysis: read the measured tables and test SDSL's laws on them (no torch, no training).

``tables``       the measured CSVs of a profile (one reader for every table) and their sha256
``stats``        cluster bootstrap with the resampling unit explicit (model, pair, target, prompt, size; two levels)
``verdicts``     claims judged by a rule fixed before looking (supported / contradicted / inconclusive)
``results``      fit once, hand on: results JSON with provenance, read back with a staleness check
``pretraining``  the ladder's Eq. 2 law, intervals resampling models; seed replicates (sizes and seeds resampled)
``acceptance``   alpha three ways, the Eq. 5 plane (pairs resampled), Table 4 forms, Eq. 12
``throughput``   Eq. 1 and Eq. 13 against timed runs, the measured optimum, step and verification cost
``chain``        N* from the handed-on law and plane (Table 5), the wall-clock optimum
``latency``      Table 6 / Figure 4: latency against distance to N*
``engines``      three engines on the same pairs: alpha agreement, each engine's iteration cost, Eq. 1 per engine
"""
