"""`rewardmodels convert-gguf`: dequantize a .gguf (or the embedded default) into a cached HF checkpoint.

transformers flags GGUF-loaded models as quantized and `Trainer` refuses to fine-tune them, so training always
goes through this converted copy. Training commands do it on first use; this command does it ahead of time.
"""

from __future__ import annotations

from rewardmodels.cli_common import ArgumentParser, add_output_dir_argument


def build_parser() -> ArgumentParser:
    from rewardmodels.modeling import EMBEDDED_ALIAS

    parser = ArgumentParser(prog="rewardmodels convert-gguf", description=__doc__)
    parser.add_argument(
        "source", nargs="?", default=EMBEDDED_ALIAS, help=f"A .gguf file, or '{EMBEDDED_ALIAS}' (default)."
    )
    add_output_dir_argument(
        parser,
        "Directory to write (default: the cache, $REWARDMODELS_CACHE or ~/.cache/rewardmodels).",
        old_spellings=("--output",),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rewardmodels.modeling import convert_gguf, resolve_model_path

    out = args.output_dir
    path = convert_gguf(args.source, out) if out else resolve_model_path(args.source)
    print(path)
    return 0
