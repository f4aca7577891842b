"""Using a reward model at inference time: best-of-N selection, rejection sampling, over-optimisation curves."""

from rewardkit.bon.overopt import curve, plot_curves
from rewardkit.bon.pools import Pool, generate_pools, read_pools, read_prompts, score_pools
from rewardkit.bon.sampling import best_of_n, rejection_sample
from rewardkit.bon.select import RULES, expected_best_of, kl_bound, pick, selection_values

__all__ = ["RULES", "Pool", "best_of_n", "curve", "expected_best_of", "generate_pools", "kl_bound", "pick",
           "plot_curves", "read_pools", "read_prompts", "rejection_sample", "score_pools", "selection_values"]
