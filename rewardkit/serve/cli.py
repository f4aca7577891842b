"""`rewardkit serve`."""

from __future__ import annotations

import os

from rewardkit.config import Command
from rewardkit.model.backbone import set_threads
from rewardkit.serve.app import ServeConfig


def run_serve(cfg: ServeConfig) -> int:
    import uvicorn

    from rewardkit.control.reward import StepRewardModel, control_model_directory
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.load import load_model
    from rewardkit.serve.app import create_app

    set_threads(cfg.threads)
    cfg.api_key = cfg.api_key or os.environ.get("REWARDKIT_API_KEY", "")
    control = control_model_directory(cfg.model) is not None
    judge = cfg.model.startswith("judge:")
    if judge:  # a generative judge: judge:local:MODEL[@k] or judge:http://HOST/v1#MODEL[@k]
        from rewardkit.judge import load_judge

        model = load_judge(cfg.model.removeprefix("judge:"))
    elif control:  # a step reward model for control, or the `rewardkit control run` output that holds one
        model = StepRewardModel.load(cfg.model)
    else:
        model = load_model(cfg.model)
    app = create_app(model, cfg)
    if judge or control:
        norm = "none (a judge's votes)" if judge else "none (control step rewards)"
    else:
        norm = ("with stored mean/std" if model.spec.normalization else
                "ensemble scores are standardised per member" if isinstance(model, ModelEnsemble) else "none stored")
    print(f"serving {cfg.model} on http://{cfg.host}:{cfg.port}  batching: "
          f"{f'up to {cfg.max_batch_size} sequences, {cfg.max_wait_ms} ms' if cfg.batching else 'off'}  "
          f"normalisation: {norm}  auth: {'API key' if cfg.api_key else 'none'}")
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_key:
        print("warning: listening beyond loopback without an API key (--api-key or $REWARDKIT_API_KEY)")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, timeout_graceful_shutdown=30)
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add serve to the command table."""
    commands["serve"] = Command(ServeConfig, run_serve,
                                "serve a reward model over HTTP to RL loops (OpenRLHF-compatible, dynamic batching)")
