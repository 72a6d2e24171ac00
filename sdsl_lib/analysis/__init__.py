"""Analysis: read the measured tables and test SDSL's laws on them (no torch, no training).

``ladder``  the measured ladder against the laws: pre-training law, alpha plane, throughput, latency
"""
