"""Provenance of a timed run names the CPU it ran on: hosts of the same "2 cores" differ by an order
of magnitude in bf16 cost (docs/field_notes.md, "Not every 2-core host"), so a sidecar must say
which ISA the numbers came from."""

from __future__ import annotations

import torch

from sdsl_lib.measurement import timing

CPUINFO_AVX2 = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx avx2 fma bmi2
processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx avx2 fma bmi2
"""
CPUINFO_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""


def test_cpu_identity_reads_the_model_and_the_flags_that_decide_bf16_speed():
    avx2 = timing.cpu_identity(CPUINFO_AVX2)
    assert avx2["cpu_model"] == "AMD EPYC" and avx2["cpu_flags"] == ["avx2"]
    amx = timing.cpu_identity(CPUINFO_AMX)
    assert amx["cpu_model"].startswith("Intel(R) Xeon(R)")
    assert amx["cpu_flags"] == ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]  # amx_int8: not listed
    empty = timing.cpu_identity("")
    assert empty["cpu_model"] == "unknown" and empty["cpu_flags"] == []


def test_hardware_info_carries_the_cpu_identity():
    info = timing.hardware_info(torch.device("cpu"))
    assert {"cpu_model", "cpu_flags", "torch_cpu_capability", "cpu_count", "torch_threads", "device"} <= set(info)
    assert set(info["cpu_flags"]) <= set(timing.CPU_FLAGS) and info["device"] == "cpu"
