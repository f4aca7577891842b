"""OpenRLHF custom reward function file backed by rewardkit.

    export REWARDKIT_URL=http://127.0.0.1:8000     # a running `rewardkit serve MODEL`
    # or: export REWARDKIT_MODEL=path/to/model     # score in the OpenRLHF process
    export REWARDKIT_STEP_SEPARATOR=$'\n'          # optional: a process reward model, steps cut at newlines
    openrlhf.cli.train_ppo_ray ... --remote_rm_url $(python -m rewardkit.serve.openrlhf_reward_func)

Running this module prints its own path, which is what --remote_rm_url expects.
"""

from __future__ import annotations

import os

from rewardkit.serve.adapters import openrlhf_reward


def reward_func(queries, prompts, labels=None):
    return openrlhf_reward(list(queries), list(prompts), labels,
                           step_separator=os.environ.get("REWARDKIT_STEP_SEPARATOR") or None)


if __name__ == "__main__":
    print(__file__)
