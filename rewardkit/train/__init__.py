"""Training recipes: `rewardkit train` and the built-in demo."""
