"""Model fingerprints: which weights a number was computed with, so that cached reference log-probs and a
scorer's reference model are never matched with other weights.

    fingerprint = sha256 over, in file-name order, each weight file's name and content (every *.safetensors
                  file of the model directory) and then config.json's name and content

It reads every byte of the weights (about 0.5 GB for SmolLM2-135M, a second or two), so equal fingerprints
mean equal weights and configuration, whatever the files' paths, times or copies. A fingerprint computed in
this process is remembered by path, size and modification time, so it is computed once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rewardmodels.modeling import resolve_model_path

CHUNK = 1 << 22  # 4 MiB read at a time
_computed: dict[tuple, str] = {}


def model_directory(name_or_path: str) -> Path:
    """The local directory of a model: a directory as given, the embedded alias or a .gguf file through
    their converted copies, a Hub id through the local Hugging Face cache (never the network)."""
    path = Path(resolve_model_path(name_or_path))
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(name_or_path), local_files_only=True))
    except Exception as e:  # noqa: BLE001 - any failure means: not available locally
        raise FileNotFoundError(
            f"model {name_or_path!r} is neither a local directory nor in the local Hugging Face cache ({e})"
        ) from None


def model_fingerprint(name_or_path: str) -> str:
    """The fingerprint (module docstring) of a model's weights and config, as 64 hex digits."""
    directory = model_directory(name_or_path)
    files = sorted(directory.glob("*.safetensors")) + [directory / "config.json"]
    missing = [f.name for f in files if not f.is_file()]
    if missing or len(files) == 1:
        raise FileNotFoundError(
            f"{directory}: cannot fingerprint the model, it has no "
            + ("config.json" if missing else "*.safetensors weights")
        )
    identity = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if identity in _computed:
        return _computed[identity]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with f.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    _computed[identity] = digest.hexdigest()
    return _computed[identity]


__all__ = ["model_directory", "model_fingerprint"]
