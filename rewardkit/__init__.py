"""rewardkit: train, evaluate and serve reward models from human or AI feedback."""

__version__ = "0.1.0"
