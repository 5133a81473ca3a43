"""`rewardmodels convert-gguf`: dequantize a .gguf (or the embedded default) into a cached HF checkpoint.

transformers flags GGUF-loaded models as quantized and `Trainer` refuses to fine-tune them, so training always
goes through this converted copy. Training commands do it on first use; this command does it ahead of time.
"""

from __future__ import annotations

from rewardmodels.cli_common import ArgumentParser, HelpFormatter


def main(argv: list[str] | None = None) -> int:
    from rewardmodels.modeling import EMBEDDED_ALIAS, convert_gguf, resolve_model_path

    parser = ArgumentParser(
        prog="rewardmodels convert-gguf", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "source", nargs="?", default=EMBEDDED_ALIAS, help=f"A .gguf file, or '{EMBEDDED_ALIAS}' (default)."
    )
    parser.add_argument(
        "--output",
        default=None,
        help="Directory to write (default: the cache, $REWARDMODELS_CACHE or ~/.cache/rewardmodels).",
    )
    args = parser.parse_args(argv)
    path = convert_gguf(args.source, args.output) if args.output else resolve_model_path(args.source)
    print(path)
    return 0
