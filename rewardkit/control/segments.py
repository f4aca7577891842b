"""Segments of trajectories, pairs of them with a preference label, and the JSONL file that holds such pairs.

A file holds records of three shapes, which may be mixed:
  pair      {"a": SEGMENT, "b": SEGMENT, "label": P(a is preferred)}
  rating    {"segment": SEGMENT, "rating": a number (higher is better)}
  success   {"segment": SEGMENT, "success": true | false}
Ratings and success labels become pairs (rated_pairs): a segment is preferred to every segment of the same length
rated lower, a success to every failure, so one Bradley-Terry model learns from all three. With
SEGMENT = {"observations": [[...], ...] (T x D_obs), "actions": [[...], ...] (T x D_act, or T x K x D_act for action
chunks), "instruction": "..." (optional), "frames": T x C x H x W (optional camera frames), "rewards": [...]
(optional true step rewards)}.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardkit.data.io import atomic_path
from rewardkit.errors import DataError


@dataclass
class Segment:
    observations: np.ndarray        # [T, D_obs]
    actions: np.ndarray             # [T, D_act] or [T, K, D_act] (action chunks)
    instruction: str | None = None
    rewards: np.ndarray | None = None  # [T] the environment's true step rewards, when known
    frames: np.ndarray | None = None   # [T, C, H, W] a camera frame per step, when the model sees them

    def __len__(self) -> int:
        return len(self.observations)

    def to_json(self) -> dict:
        out = {"observations": self.observations.tolist(), "actions": self.actions.tolist()}
        if self.instruction is not None:
            out["instruction"] = self.instruction
        if self.rewards is not None:
            out["rewards"] = self.rewards.tolist()
        if self.frames is not None:
            out["frames"] = self.frames.tolist()
        return out


def segment_from_json(value, where: str) -> Segment:
    """A Segment from its JSON object; a DataError naming `where` and the field for anything malformed."""
    if not isinstance(value, dict):
        raise DataError(f"{where}: must be an object with observations and actions")
    arrays = {}
    for name in ("observations", "actions", "rewards", "frames"):
        if name not in value:
            if name in ("rewards", "frames"):
                continue
            raise DataError(f"{where}.{name}: missing")
        try:
            arrays[name] = np.asarray(value[name], dtype=np.float32)
        except (ValueError, TypeError):
            raise DataError(f"{where}.{name}: must be a rectangular array of numbers") from None
    instruction = value.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise DataError(f"{where}.instruction: must be a string")
    segment = Segment(arrays["observations"], arrays["actions"], instruction, arrays.get("rewards"), arrays.get("frames"))
    check_segment(segment, where)
    return segment


def check_segment(segment: Segment, where: str, obs_dim: int | None = None, action_shape: tuple | None = None,
                  instructed: bool | None = None, frame_shape: list[int] | None = None) -> None:
    """Shapes, finiteness and (when given) agreement with a model's inputs; errors name `where` and the field."""
    obs, act = segment.observations, segment.actions
    if obs.ndim != 2 or len(obs) == 0:
        raise DataError(f"{where}.observations: must be T x D_obs with T >= 1, got shape {list(obs.shape)}")
    if act.ndim not in (2, 3) or len(act) != len(obs):
        raise DataError(f"{where}.actions: must be T x D_act or T x K x D_act with T = {len(obs)} (the "
                        f"observations' length), got shape {list(act.shape)}")
    frames = segment.frames
    if frames is not None and (frames.ndim != 4 or len(frames) != len(obs)):
        raise DataError(f"{where}.frames: must be T x C x H x W with T = {len(obs)}, got shape {list(frames.shape)}")
    for name, array in (("observations", obs), ("actions", act), ("rewards", segment.rewards), ("frames", frames)):
        if array is not None and not np.isfinite(array).all():
            step = int(np.argwhere(~np.isfinite(array))[0][0])
            raise DataError(f"{where}.{name}: step {step} is NaN or infinite")
    if segment.rewards is not None and segment.rewards.shape != (len(obs),):
        raise DataError(f"{where}.rewards: must hold one number per step ({len(obs)}), got shape {list(segment.rewards.shape)}")
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise DataError(f"{where}.observations: the model takes {obs_dim} numbers per observation, got {obs.shape[1]}")
    if action_shape is not None and tuple(act.shape[1:]) != tuple(action_shape):
        raise DataError(f"{where}.actions: the model takes actions of shape {list(action_shape)} per step, "
                        f"got {list(act.shape[1:])}")
    if instructed is False and segment.instruction is not None:
        raise DataError(f"{where}.instruction: the model was trained without instructions; leave it out")
    if instructed and segment.instruction is None:
        raise DataError(f"{where}.instruction: the model needs an instruction for every segment")
    if frame_shape is not None and bool(frame_shape) != (frames is not None):
        raise DataError(f"{where}.frames: " + ("the model needs a frame per step" if frame_shape else
                                               "the model was trained without frames; leave them out"))
    if frame_shape and list(frames.shape[1:]) != list(frame_shape):
        raise DataError(f"{where}.frames: the model takes frames of shape {list(frame_shape)}, got {list(frames.shape[1:])}")


def check_pair(a: Segment, b: Segment, where: str) -> None:
    if len(a) != len(b):
        raise DataError(f"{where}: segments a and b have different lengths ({len(a)} and {len(b)} steps); "
                        f"a pair compares segments of one length")


def read_pairs(path: str | Path, max_rated_pairs: int = 20_000, seed: int = 0) -> tuple[list[tuple[Segment, Segment]], np.ndarray]:
    """Labelled pairs from a JSONL file: the pairs and their labels [N] (P(a is preferred)); rating and success
    records become pairs (at most `max_rated_pairs` of them, drawn at random)."""
    pairs, labels, scored = [], [], {"rating": [], "success": []}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}: record {line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: not JSON ({err})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: must be an object: a pair (a, b, label), a rating or a success label")
            if "segment" in record:
                kind, value = _rated(record, where)
                scored[kind].append((segment_from_json(record["segment"], f"{where}.segment"), value))
                continue
            a = segment_from_json(record.get("a"), f"{where}.a")
            b = segment_from_json(record.get("b"), f"{where}.b")
            check_pair(a, b, where)
            label = record.get("label")
            if isinstance(label, bool) or not isinstance(label, int | float) or not 0 <= label <= 1 or math.isnan(label):
                raise DataError(f"{where}.label: must be P(a is preferred), a number in [0, 1]")
            pairs.append((a, b))
            labels.append(float(label))
    rng = np.random.default_rng(seed)
    for kind in ("rating", "success"):
        more = rated_pairs(scored[kind], max_rated_pairs, rng)
        pairs += more
        labels += [1.0] * len(more)
    if not pairs:
        raise DataError(f"{path}: no labelled pairs (nor two segments of one length with different ratings)")
    return pairs, np.asarray(labels, dtype=np.float32)


def _rated(record: dict, where: str) -> tuple[str, float]:
    if "rating" in record:
        value = record["rating"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise DataError(f"{where}.rating: must be a finite number")
        return "rating", float(value)
    if isinstance(record.get("success"), bool):
        return "success", float(record["success"])
    raise DataError(f"{where}: a record with a segment needs a rating (number) or success (true or false)")


def rated_pairs(scored: list[tuple[Segment, float]], limit: int, rng: np.random.Generator) -> list[tuple[Segment, Segment]]:
    """(better, worse) pairs from rated segments: every two of one length with different values, better first; at
    most `limit`, drawn at random."""
    out = []
    for i, (a, va) in enumerate(scored):
        for b, vb in scored[i + 1:]:
            if len(a) == len(b) and va != vb:
                out.append((a, b) if va > vb else (b, a))
    if len(out) > limit:
        out = [out[i] for i in rng.choice(len(out), limit, replace=False)]
    return out


def write_pairs(path: str | Path, pairs: list[tuple[Segment, Segment]], labels: np.ndarray, extra: list[dict] | None = None) -> None:
    """Labelled pairs as JSONL, written atomically; `extra` adds fields to each record (provenance)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, ((a, b), label) in enumerate(zip(pairs, labels, strict=True)):
            record = {"a": a.to_json(), "b": b.to_json(), "label": float(label), **(extra[i] if extra else {})}
            f.write(json.dumps(record) + "\n")

