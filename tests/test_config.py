"""Command-line flags and YAML files become typed configs: conversions, overrides, errors that name the option,
checks of options that must fit together, every shipped YAML, and help for every option of every command."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import docstring_parser
import pytest
import yaml

from rewardkit.cli import commands, main
from rewardkit.config import ConfigError, load_yaml, parse
from rewardkit.train.config import TrainConfig
from rewardkit.train.recipe import RecipeConfig
from rewardkit.train.sweep import SweepConfig

EXAMPLES = Path(__file__).parent.parent / "examples"


def train_config(*flags: str, yaml_text: str | None = None, tmp_path: Path | None = None) -> TrainConfig:
    args = ["--train", "t.jsonl", *flags]
    if yaml_text is not None:
        (tmp_path / "c.yaml").write_text(yaml_text)
        args += ["--config", str(tmp_path / "c.yaml")]
    return parse(TrainConfig, args)


def test_typed_lists_booleans_and_dicts_from_flags():
    cfg = train_config("--head-weights", "0.7", "0.3", "--heads", "help", "safe", "--no-disable-dropout", "--no-progress",
                       "--mix-weights", "pairwise=1", "rating=0.5", "--max-length", "128", "--init-seed", "3")
    assert cfg.head_weights == [0.7, 0.3] and all(isinstance(w, float) for w in cfg.head_weights)
    assert cfg.heads == ["help", "safe"] and cfg.max_length == 128 and cfg.init_seed == 3
    assert cfg.disable_dropout is False and cfg.progress is False
    assert cfg.mix_weights == {"pairwise": 1.0, "rating": 0.5}
    assert train_config("--pooling", "None").pooling is None


def test_yaml_values_and_flags_that_override_them(tmp_path):
    text = "lr: 1e-4\nepochs: 2\nmix_weights: {pairwise: 1, rating: 0.5}\nheads: [a, b]\nhead-weights: [1, 2]\n"
    cfg = train_config("--epochs", "3", yaml_text=text, tmp_path=tmp_path)
    assert cfg.lr == 1e-4 and cfg.epochs == 3.0  # YAML 1.2 numbers; the flag wins
    assert cfg.mix_weights == {"pairwise": 1, "rating": 0.5} and cfg.heads == ["a", "b"] and cfg.head_weights == [1, 2]
    # the flag wins whether it comes before or after --config
    config = str(tmp_path / "c.yaml")
    assert parse(TrainConfig, ["--lr", "3e-3", "--config", config, "--train", "t"]).lr == 3e-3
    # a saved config (OUTPUT/train_config.yaml, written as here) reads back as the same config
    saved = TrainConfig(train="pairs.jsonl", lr=3e-5, seed=4, mix_weights={"rating": 0.5})
    (tmp_path / "saved.yaml").write_text(yaml.safe_dump(dataclasses.asdict(saved), sort_keys=False))
    assert parse(TrainConfig, ["--config", str(tmp_path / "saved.yaml")]) == saved


def test_unknown_options_are_errors_that_name_them(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown option 'max_lenght' in .*c\.yaml \(did you mean max_length"):
        train_config(yaml_text="max_lenght: 128\n", tmp_path=tmp_path)
    with pytest.raises(ConfigError, match=r"--max-lenght(.|\n)*--max-length"):  # with tyro's "perhaps you meant"
        train_config("--max-lenght", "128")
    with pytest.raises(ConfigError, match="unknown option 'probes'"):
        parse(RecipeConfig, ["--config", _write(tmp_path / "r.yaml", "train: {lr: 1.0e-4}\nprobes: 0\n")])
    with pytest.raises(ConfigError, match=r"unknown option 'train.lrr' in .*r\.yaml \(did you mean train.lr"):
        parse(RecipeConfig, ["--config", _write(tmp_path / "r.yaml", "train: {lrr: 1.0e-4}\n")])
    with pytest.raises(ConfigError, match="config file not found"):
        parse(TrainConfig, ["--config", str(tmp_path / "missing.yaml")])


def test_bad_values_and_choices_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="--pooling"):
        train_config("--pooling", "average")
    with pytest.raises(ConfigError, match="option 'pooling' expects one of last, mean, first, pooler or null"):
        train_config(yaml_text="pooling: average\n", tmp_path=tmp_path)
    with pytest.raises(ConfigError, match="--lr"):
        train_config("--lr", "fast")
    with pytest.raises(ConfigError, match="option 'epochs' expects float"):
        train_config(yaml_text="epochs: two\n", tmp_path=tmp_path)
    with pytest.raises(ConfigError, match="KEY=NUMBER"):
        train_config("--mix-weights", "pairwise")


def test_options_that_do_not_fit_together_stop_at_the_gate():
    for bad, message in (({"batch_size": 0}, "batch_size"), ({"label_smoothing": 0.5}, "label_smoothing"),
                         ({"ensemble": 1}, "--ensemble K"), ({"ensemble": 2, "heads": ["a", "b"]}, "--ensemble K"),
                         ({"ensemble": 2, "length_head": True}, "--length-head"),
                         ({"heads": ["a", "b"], "head_weights": [1.0]}, "one weight per head"),
                         ({"cache_features": True}, "--cache-features"),
                         ({"cache_features": True, "freeze_backbone": True, "lora_r": 8}, "--cache-features"),
                         ({"prefix_sharing": True, "backbone": "mlp"}, "--prefix-sharing")):
        with pytest.raises(ConfigError, match=message):
            TrainConfig(train="t", **bad)
    with pytest.raises(ConfigError, match="label_smoothing"):  # also when the values come from flags
        train_config("--label-smoothing", "0.7")
    with pytest.raises(ConfigError, match="train.train"):
        RecipeConfig(train=TrainConfig(train="mine.jsonl"))
    with pytest.raises(ConfigError, match="unknown source"):
        RecipeConfig(sources={"hh": 1.0})
    with pytest.raises(ConfigError, match="ensemble_models"):
        RecipeConfig(ensemble_models=2, train=TrainConfig(train="", ensemble=2))
    with pytest.raises(ConfigError, match="merge_members"):
        RecipeConfig(merge_members=True)


def test_a_config_error_from_the_command_line_is_one_line_and_exit_code_2(capsys):
    assert main(["train", "--train", "t.jsonl", "--label-smoothing", "0.7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rewardkit: error: label_smoothing must be in") and "Traceback" not in err
    assert main(["score", "model-dir", "in.jsonl"]) == 2  # a missing positional
    assert "OUTPUT" in capsys.readouterr().err.upper()


def test_a_recipe_contains_a_training_config(tmp_path):
    path = _write(tmp_path / "r.yaml", "sources: {synthetic: 1}\ntrain:\n  lr: 1.0e-4\n  backbone: mlp\n  epochs: 2\n")
    cfg = parse(RecipeConfig, ["--config", path, "--train.epochs", "3", "--train.head-weights", "0.5"])
    assert cfg.sources == {"synthetic": 1.0} and cfg.train.lr == 1e-4 and cfg.train.backbone == "mlp"
    assert cfg.train.epochs == 3.0 and cfg.train.head_weights == [0.5]
    assert parse(RecipeConfig, ["--train.lr", "5e-5", "--no-merge-members"]).train.lr == 5e-5
    # a sweep is a recipe plus a grid, spelled as the recipe is: a recipe YAML is a sweep YAML
    sweep = parse(SweepConfig, ["--config", path, "--grid", "lr=1e-4,2e-4", "--train.seed", "2"])
    assert sweep.recipe.sources == {"synthetic": 1.0} and sweep.recipe.train.seed == 2 and sweep.recipe.output == "runs/sweep"
    with pytest.raises(ConfigError, match="changes the data mix"):
        parse(SweepConfig, ["--grid", "max_per_source=10,20"])
    with pytest.raises(ConfigError, match="objective"):
        parse(SweepConfig, ["--grid", "objective=bt,nonsense"])


def test_positionals_and_a_renamed_flag():
    cfg = parse(commands()["score"].config, ["m", "in.jsonl", "out.jsonl", "--batch-size", "8", "--no-progress"])
    assert (cfg.model, cfg.input, cfg.output, cfg.batch_size, cfg.progress) == ("m", "in.jsonl", "out.jsonl", 8, False)
    convert = parse(commands()["data convert"].config, ["--from", "hh-rlhf", "a", "b.jsonl"])
    assert convert.from_format == "hh-rlhf"


@pytest.mark.parametrize("path", sorted([*(EXAMPLES / "recipes").glob("*.yaml"), *(EXAMPLES / "configs").glob("*.yaml")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_yaml_parses_into_its_config(path):
    command = "train" if path.parent.name == "configs" else "sweep" if "grid" in load_yaml(path) else "recipe"
    cfg = parse(commands()[command].config, ["--config", str(path)])
    training = cfg if command == "train" else cfg.train if command == "recipe" else cfg.recipe.train
    assert isinstance(training, TrainConfig) and training.lr > 0


def _leaf_options(cls: type, prefix: str = "") -> list[tuple[str, str]]:
    """(option, help) for every option of a config class, nested ones as 'train.lr'."""
    docs = {}  # attribute docstrings, a subclass's before its bases' (tyro reads inherited ones too)
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        docs.update({p.arg_name: p.description or "" for p in docstring_parser.parse_from_object(klass).params})
    out = []
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        inner = typing.get_args(hint)[0] if hasattr(hint, "__metadata__") else hint
        if dataclasses.is_dataclass(inner):
            out += _leaf_options(inner, f"{prefix}{name}.")
            continue
        annotated = [m.help for m in getattr(hint, "__metadata__", ()) if getattr(m, "help", None)]
        out.append((prefix + name, (annotated or [docs.get(name, "")])[0]))
    return out


def test_every_option_of_every_command_has_help(capsys):
    for name, command in commands().items():
        assert command.summary and command.config.__doc__, name
        missing = [option for option, text in _leaf_options(command.config) if not text.strip()]
        assert not missing, f"{name}: no help for {missing}"
    with pytest.raises(SystemExit):
        main(["recipe", "--help"])
    text = capsys.readouterr().out
    assert "--train.lr" in text and "peak learning rate" in text and "--sources" in text


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)
