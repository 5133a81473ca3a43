"""Implicit PRMs (Yuan et al. 2024, "Free Process Rewards without Process Labels"): a causal LM trained on
outcome labels (CE) or preference pairs (DPO) whose log-ratio to a frozen reference gives process rewards
for free. config, data (features; their batches are `causal.batches`), reference (pi_ref without a second
copy under LoRA), ref_cache (the reference runs once per example), trainer, train (the command), online
(PRIME's update)."""

from rewardmodels.implicit_prm.config import ImplicitPRMConfig
from rewardmodels.implicit_prm.trainer import ImplicitPRMTrainer

__all__ = ["ImplicitPRMConfig", "ImplicitPRMTrainer"]
