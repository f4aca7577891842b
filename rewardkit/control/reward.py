"""The step reward model for control: an ensemble that gives every (observation, action[, instruction]) step a reward.

Two architectures, both ensembles of M members:
- "mlp": one MLP per member over [observation, action (a chunk flattened), instruction embedding]; the members'
  weights are stacked [M, in, out] so one batched matmul per layer runs them all (fast inside an env loop).
- "chunk-transformer": for action chunks; per member, a small transformer reads one token for the observation (with
  the instruction) and one per action of the chunk, and its reward comes from the observation token.
The instruction is embedded by the bundled MiniLM text encoder (frozen, one vector per distinct instruction), then
centred on the mean embedding of the instructions the model was first trained with and scaled back to unit length:
sentence embeddings of related instructions share most of their direction ("reach the red target" and "... blue
target" have cosine 0.8), and the centring leaves the part that tells them apart. Camera
frames [C, H, W] (small: a CPU model) pass through each member's own small CNN, whose features join the observation.
Step rewards are tanh-bounded, as in PEBBLE, so a segment's return cannot grow without limit. Observations and
actions are standardised per dimension by the statistics of the steps the model is fitted on (set at every fit,
saved with the weights): state vectors mix scales — on random Reacher rollouts the joint velocities have standard
deviations of 7-10, the fingertip's offset from the target, which decides the reward, 0.15 — and an MLP on raw
inputs learns from the large ones.

A saved model is a directory with control_reward.json (StepRewardSpec) and model.safetensors; never a pickle.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rewardkit.control.segments import Segment, check_segment
from rewardkit.errors import DataError, ModelError
from rewardkit.model.steps import aggregate_steps

SPEC_FILE, WEIGHTS_FILE = "control_reward.json", "model.safetensors"
ARCHITECTURES = ("mlp", "chunk-transformer")


@dataclass
class StepRewardSpec:
    obs_dim: int
    action_dim: int
    chunk: int = 0                 # actions per step (an action chunk [K, D_act]); 0 = one action [D_act]
    architecture: str = "mlp"
    members: int = 3
    hidden: int = 64               # 3 x 64 keeps refits and the in-loop reward cheap on a CPU (PEBBLE: 3 x 256)
    layers: int = 3
    instructed: bool = False       # takes a language instruction (embedded by the bundled MiniLM)
    instruction_dim: int = 384     # MiniLM's embedding width
    frame_shape: list[int] = dataclasses.field(default_factory=list)  # [C, H, W] of a camera frame per step; [] = none
    frame_features: int = 32       # what each member's CNN makes of a frame

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.chunk, self.action_dim) if self.chunk else (self.action_dim,)


class EnsembleLinear(nn.Module):
    """M independent linear layers applied at once: x [M, N, fan_in] -> [M, N, fan_out]."""

    def __init__(self, members: int, fan_in: int, fan_out: int):
        super().__init__()
        bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation, member by member
        self.weight = nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class ChunkTransformer(nn.Module):
    """One member for action chunks: tokens [observation(+instruction), a_1, ..., a_K] -> a reward per step."""

    def __init__(self, obs_in: int, action_dim: int, chunk: int, width: int = 64, layers: int = 2):
        super().__init__()
        self.obs_token = nn.Linear(obs_in, width)
        self.action_token = nn.Linear(action_dim, width)
        self.position = nn.Parameter(torch.zeros(chunk + 1, width))
        layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, 1)

    def forward(self, obs: torch.Tensor, chunks: torch.Tensor) -> torch.Tensor:
        """obs [N, obs_in], chunks [N, K, D_act] -> [N]."""
        tokens = torch.cat([self.obs_token(obs).unsqueeze(1), self.action_token(chunks)], dim=1) + self.position
        return self.out(self.encoder(tokens)[:, 0]).squeeze(-1)


class FrameCNN(nn.Module):
    """One member's frame encoder: frames [N, C, H, W] -> features [N, F] (two strided convolutions, average pool)."""

    def __init__(self, channels: int, features: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, 16, 5, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, features))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)


class StepRewardModel(nn.Module):
    """An ensemble of step reward models; see the module docstring."""

    def __init__(self, spec: StepRewardSpec):
        super().__init__()
        if spec.architecture not in ARCHITECTURES:
            raise ModelError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {spec.architecture!r}")
        if spec.architecture == "chunk-transformer" and not spec.chunk:
            raise ModelError("the chunk-transformer reads action chunks: set chunk (actions per step) >= 1")
        self.spec = spec
        obs_in = spec.obs_dim + (spec.instruction_dim if spec.instructed else 0) + (spec.frame_features if spec.frame_shape else 0)
        if spec.frame_shape:
            self.cnn = nn.ModuleList(FrameCNN(spec.frame_shape[0], spec.frame_features) for _ in range(spec.members))
        if spec.architecture == "mlp":
            widths = [obs_in + math.prod(spec.action_shape)] + [spec.hidden] * spec.layers + [1]
            self.mlp = nn.ModuleList(EnsembleLinear(spec.members, a, b) for a, b in zip(widths, widths[1:], strict=False))
        else:
            self.members = nn.ModuleList(ChunkTransformer(obs_in, spec.action_dim, spec.chunk, layers=spec.layers)
                                         for _ in range(spec.members))
        if spec.instructed:  # set once by center_instructions, saved with the weights
            self.register_buffer("instruction_center", torch.zeros(spec.instruction_dim))
        for name, width in (("obs", spec.obs_dim), ("action", spec.action_dim)):  # set by standardise_inputs
            self.register_buffer(f"{name}_mean", torch.zeros(width))
            self.register_buffer(f"{name}_std", torch.ones(width))
        self._texts = None  # the instruction encoder, loaded on first use
        self.version = 0    # bumped by every fit, so copies of the weights (numpy_mlp) know they are stale

    def step_rewards(self, obs: torch.Tensor, actions: torch.Tensor, instruction: torch.Tensor | None = None,
                     frames: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards [M, B, T] for observations [B, T, D_obs], actions [B, T, *action_shape] and, for an instructed
        model, instruction embeddings [B, E] (one per segment), for a model with frames, frames [B, T, C, H, W];
        every member reads the same steps."""
        M = self.spec.members
        shared = [x.expand(M, *x.shape) if x is not None else None for x in (obs, actions, instruction, frames)]
        return self.member_step_rewards(*shared)

    def member_step_rewards(self, obs: torch.Tensor, actions: torch.Tensor, instruction: torch.Tensor | None = None,
                            frames: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards [M, B, T] when each member reads its own segments: obs [M, B, T, D_obs], actions
        [M, B, T, *action_shape], instruction [M, B, E], frames [M, B, T, C, H, W] (training gives each member its
        own order of the data)."""
        M, B, T = obs.shape[:3]
        obs = (obs - self.obs_mean) / self.obs_std
        actions = (actions - self.action_mean) / self.action_std  # per action dimension, chunks included
        if self.spec.instructed:
            obs = torch.cat([obs, instruction.unsqueeze(2).expand(M, B, T, -1)], dim=-1)
        if self.spec.frame_shape:
            seen = torch.stack([cnn(f.reshape(B * T, *f.shape[2:])) for cnn, f in zip(self.cnn, frames, strict=True)])
            obs = torch.cat([obs, seen.reshape(M, B, T, -1)], dim=-1)
        if self.spec.architecture == "mlp":
            x = torch.cat([obs, actions.reshape(M, B, T, -1)], dim=-1).reshape(M, B * T, -1)
            for i, layer in enumerate(self.mlp):
                x = layer(x)
                x = torch.tanh(x) if i == len(self.mlp) - 1 else nn.functional.leaky_relu(x)
            return x.reshape(M, B, T)
        chunks = actions.reshape(M, B * T, self.spec.chunk, -1)
        return torch.stack([torch.tanh(member(o, c)) for member, o, c in
                            zip(self.members, obs.reshape(M, B * T, -1), chunks, strict=True)]).reshape(M, B, T)

    def segment_returns(self, obs: torch.Tensor, actions: torch.Tensor, instruction: torch.Tensor | None = None,
                        frames: torch.Tensor | None = None) -> torch.Tensor:
        """Each member's return of each segment [M, B]: the sum aggregate of its step rewards. Inputs as for
        step_rewards, or with a leading member dimension as for member_step_rewards."""
        per_member = obs.dim() == 4
        per_step = (self.member_step_rewards if per_member else self.step_rewards)(obs, actions, instruction, frames)
        M, B, T = per_step.shape
        mask = torch.ones(M * B, T, dtype=torch.bool)
        return aggregate_steps(per_step.reshape(M * B, T), mask, "sum").reshape(M, B)

    def standardise_inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> None:
        """Set the per-dimension mean and std of observations [..., D_obs] and actions [..., D_act] from the steps
        given (a constant dimension keeps std 1)."""
        for name, x in (("obs", obs), ("action", actions)):
            flat = x.reshape(-1, x.shape[-1]).float()
            std = flat.std(dim=0)
            getattr(self, f"{name}_mean").copy_(flat.mean(dim=0))
            getattr(self, f"{name}_std").copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def numpy_mlp(self):
        """The MLP ensemble as a NumPy function of step inputs x [N, F] (observation, instruction embedding,
        flattened action) -> rewards [M, N], for inside an environment loop: one small batch per step, where a
        NumPy matmul costs microseconds and a torch call tens of them. Equal to step_rewards (tested)."""
        if self.spec.architecture != "mlp" or self.spec.frame_shape:
            return None
        layers = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in self.mlp]
        repeat = self.spec.chunk or 1
        parts = [(self.obs_mean, self.obs_std)]
        if self.spec.instructed:
            parts.append((torch.zeros(self.spec.instruction_dim), torch.ones(self.spec.instruction_dim)))
        parts.append((self.action_mean.repeat(repeat), self.action_std.repeat(repeat)))
        mean, std = (torch.cat(column).numpy().copy() for column in zip(*parts, strict=True))

        def forward(x: np.ndarray) -> np.ndarray:
            x = np.broadcast_to((x - mean) / std, (len(layers[0][0]), *x.shape))  # every member reads the same steps
            for i, (w, b) in enumerate(layers):
                x = x @ w + b  # [M, N, F] @ [M, F, H] -> [M, N, H]
                x = np.tanh(x) if i == len(layers) - 1 else np.maximum(x, 0.01 * x)  # leaky ReLU
            return x[..., 0]

        return forward

    # ------------------------------------------------------------ plain calls

    def embed_instructions(self, instructions: list[str | None]) -> torch.Tensor | None:
        """Embeddings [B, E] of the instructions, centred (see the module docstring); None for a model without them."""
        if not self.spec.instructed:
            return None
        return nn.functional.normalize(self._encoder()(instructions) - self.instruction_center, dim=-1)

    def center_instructions(self, instructions: list[str]) -> None:
        """Fix the centre of instruction embeddings: the mean over these distinct instructions. Only once (later
        calls change nothing), so the rewards a trained model gives an instruction never move."""
        distinct = sorted(set(instructions))
        if self.spec.instructed and not bool(self.instruction_center.any()) and len(distinct) > 1:
            self.instruction_center.copy_(self._encoder()(distinct).mean(dim=0))

    def _encoder(self):
        if self._texts is None:  # loaded on first use: a model without instructions never needs it
            from rewardkit.control.instructions import InstructionEncoder

            self._texts = InstructionEncoder()
        return self._texts

    @torch.inference_mode()
    def reward(self, obs, actions, instruction: str | list[str] | None = None, frames=None,
               members: bool = False) -> np.ndarray:
        """reward(obs, action[, instruction][, frames]) for N steps: obs [N, D_obs], actions [N, *action_shape],
        frames [N, C, H, W] (or one step without the N) -> rewards [N], the members' mean (or [M, N] with
        members=True)."""
        obs, actions = np.asarray(obs, dtype=np.float32), np.asarray(actions, dtype=np.float32)
        frames = None if frames is None else np.asarray(frames, dtype=np.float32)
        single = obs.ndim == 1
        if single:
            obs, actions = obs[None], actions[None]
            frames = None if frames is None else frames[None]
        texts = [instruction] * len(obs) if instruction is None or isinstance(instruction, str) else list(instruction)
        check_steps(self.spec, obs, actions, texts, frames)
        # Each step is a segment of one step.
        per_step = self.step_rewards(torch.from_numpy(obs).unsqueeze(1), torch.from_numpy(actions).unsqueeze(1),
                                     self.embed_instructions(texts),
                                     None if frames is None else torch.from_numpy(frames).unsqueeze(1))[:, :, 0]
        out = per_step if members else per_step.mean(dim=0)
        out = out.numpy()
        return out[..., 0] if single else out

    @torch.inference_mode()
    def score_segments(self, segments: list[Segment], where: str = "segment") -> np.ndarray:
        """Each member's return of each segment [M, B] (segments of one length)."""
        for i, s in enumerate(segments):
            check_segment(s, f"{where} {i}", self.spec.obs_dim, self.spec.action_shape, self.spec.instructed,
                          self.spec.frame_shape)
        obs = torch.as_tensor(np.stack([s.observations for s in segments]))
        act = torch.as_tensor(np.stack([s.actions for s in segments]))
        frames = torch.as_tensor(np.stack([s.frames for s in segments])) if self.spec.frame_shape else None
        return self.segment_returns(obs, act, self.embed_instructions([s.instruction for s in segments]), frames).numpy()

    # ------------------------------------------------------------ saving and loading

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(directory / WEIGHTS_FILE))
        (directory / SPEC_FILE).write_text(json.dumps(dataclasses.asdict(self.spec), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> StepRewardModel:
        """From a model directory, or the `rewardkit control run` output that holds one in reward/."""
        directory = control_model_directory(directory) or Path(directory)
        if not (directory / SPEC_FILE).exists():
            raise ModelError(f"{directory} holds no control reward model ({SPEC_FILE} is missing)")
        known = {f.name for f in dataclasses.fields(StepRewardSpec)}
        spec = StepRewardSpec(**{k: v for k, v in json.loads((directory / SPEC_FILE).read_text()).items() if k in known})
        model = cls(spec)
        state = load_file(str(directory / WEIGHTS_FILE))
        for name in ("obs_mean", "obs_std", "action_mean", "action_std"):
            state.setdefault(name, getattr(model, name))  # a model saved without them reads its inputs as they are
        model.load_state_dict(state)
        return model.eval()


def control_model_directory(path: str | Path) -> Path | None:
    """The control reward model at `path` or `path`/reward (a `rewardkit control run` output); None if neither."""
    for directory in (Path(path), Path(path) / "reward"):
        if (directory / SPEC_FILE).exists():
            return directory
    return None


def check_steps(spec: StepRewardSpec, obs: np.ndarray, actions: np.ndarray, instructions: list,
                frames: np.ndarray | None = None) -> None:
    """Steps [N, ...] against the model's inputs: the checks of a segment (check_segment: shapes, NaN, frames) plus
    one instruction per step; a ModelError naming the field and the first bad step."""
    try:
        check_segment(Segment(obs, actions, None, None, frames), "steps", spec.obs_dim, spec.action_shape,
                      None, spec.frame_shape)
    except DataError as err:
        raise ModelError(str(err)) from None
    if len(instructions) != len(obs):
        raise ModelError(f"instruction: {len(instructions)} instructions for {len(obs)} steps")
    given = [t is not None for t in instructions]
    if spec.instructed and not all(given):
        raise ModelError(f"instruction: the model needs one for every step (step {given.index(False)} has none)")
    if not spec.instructed and any(given):
        raise ModelError("instruction: the model was trained without instructions; leave it out")
