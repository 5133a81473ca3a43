"""Shared causal-LM seams: what the DPO scorer, the implicit PRM and the generative verifier read from a causal
LM, written once.

  logprobs          per-token response log-probs of padded, packed and tree batches, and their float64 sums
  batches           the collators of the two causal methods: completion tokens, and response groups
  response_tokens   the response start and step boundaries, from the offsets of the one rendering scored
  implicit_rewards  token values and step rewards of an implicit PRM, from per-token rewards
  fingerprints      weight fingerprints, so cached reference log-probs never meet other weights

Core modules: trainers and scorers import them, they import neither (`tests/test_layering.py`).
"""
