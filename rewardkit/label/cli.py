"""`rewardkit label start` (a campaign from a records file, served at once) and `rewardkit label export`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tyro.conf import Positional

from rewardkit.config import Command, ConfigError


@dataclass
class StartConfig:
    """Start labelling: make a campaign from a rewardkit records file (pairwise, ranking, rating or stepwise records,
    or control segment pairs {"a", "b"} shown as animated clips; a record with "gold": true becomes a gold item, its
    own label the answer) in the database, print each
    annotator's link and the admin's, and serve the app. Run it again on the same database to serve the campaign
    as it stands (labels are never lost)."""

    records: Positional[str]
    """the records to label, a `rewardkit bon` output or control segment pairs (ignored when the campaign exists)"""
    most_candidates: int = 4
    """from a `rewardkit bon` output, rank at most this many candidates per prompt (evenly spaced by the model's score)"""
    db: str = "sqlite:///labels.db"
    """SQLAlchemy URL of the database (SQLite: one file; postgresql://... when several people label at once)"""
    campaign: str = ""
    """the campaign's name (default: the records file's name)"""
    annotators: list[str] = field(default_factory=lambda: ["annotator1", "annotator2"])
    """annotator names; each gets a secret link"""
    per_item: int = 2
    """annotators per item (gold items go to everyone)"""
    repeats: int = 0
    """items shown a second time to the same annotators (self-consistency)"""
    scale: int = 5
    """ratings go from 1 to this"""
    attributes: list[str] = field(default_factory=list)
    """rating attributes (default: those of the first rating record, or "score")"""
    threshold: float = 0.7
    """flag annotators whose gold accuracy (or self-consistency) falls below this"""
    host: str = "127.0.0.1"
    """address to bind"""
    port: int = 8080
    """TCP port"""
    links: str = ""
    """also write the links to this JSON file (they are secrets: keep it private)"""
    batch: int = 0
    """0: every item at once; N: start with N pairs and keep the rest in a pool, N more per click on the admin page"""
    select: Literal["disagreement", "margin", "random"] = "random"
    """which pooled pairs come next: where an ensemble disagrees most, where the model's margin is smallest, or random"""
    active_model: str = ""
    """the reward model (an ensemble for disagreement) that ranks the pool"""
    seed: int = 0
    """seeds assignment and the shown order of responses"""


def run_start(cfg: StartConfig) -> int:
    import uvicorn

    from rewardkit.label.app import create_app, next_batch
    from rewardkit.label.store import LabelStore
    from rewardkit.label.tasks import item_from_record, read_for_labelling

    if cfg.select != "random" and not cfg.active_model:
        raise ConfigError(f"--select {cfg.select} needs --active-model (a reward model, an ensemble for disagreement)")
    scorer = None
    if cfg.active_model:
        from rewardkit.eval.scorers import load_scorer

        scorer = load_scorer(cfg.active_model, progress=False)
    store = LabelStore(cfg.db)
    name = cfg.campaign or Path(cfg.records).stem
    if store.campaign(name) is None:
        records, left_out = read_for_labelling(cfg.records, cfg.most_candidates)
        if left_out:
            print(f"{left_out} bon record(s) with fewer than two usable candidates left out")
        made = [item_from_record(r, f"{cfg.records}: record {i + 1}") for i, r in enumerate(records)]
        kinds = {kind for kind, _, _ in made}
        if len(kinds) != 1:
            raise ConfigError(f"{cfg.records} mixes record kinds {sorted(kinds)}; a campaign labels one kind")
        kind = kinds.pop()
        attributes = cfg.attributes or sorted((records[0].get("scores") or {"score": 0}).keys())
        if cfg.batch and kind != "pairwise":
            raise ConfigError("--batch (active selection) works on pairwise records")
        settings = {"attributes": attributes, "scale": cfg.scale, "source": cfg.records, "per_item": cfg.per_item}
        pooled = {i for i, (_, _, gold) in enumerate(made) if gold is None} if cfg.batch else set()
        tokens = store.create_campaign(name, kind, [item for _, item, _ in made], [gold for _, _, gold in made],
                                       cfg.annotators, cfg.per_item, cfg.repeats, settings, cfg.seed, pooled)
        if cfg.batch:  # the first batch, chosen as every later one is
            next_batch(store, store.campaign(name), scorer, cfg.select, cfg.batch, cfg.seed)
        base = f"http://{cfg.host}:{cfg.port}"
        links = {who: f"{base}/{'admin' if who == 'admin' else 'a'}/{token}" for who, token in tokens.items()}
        print(f"campaign {name!r}: {len(made)} {kind} items, {len(cfg.annotators)} annotators")
        for who, link in links.items():
            print(f"  {who:<12} {link}")
        if cfg.links:
            Path(cfg.links).write_text(json.dumps(links, indent=2) + "\n")
    else:
        print(f"campaign {name!r} exists in {cfg.db}: serving it as it stands (links as printed when it was made)")
    app = create_app(store, cfg.threshold, scorer, cfg.select, cfg.batch)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
    return 0


@dataclass
class ExportConfig:
    """Write a campaign's labels as rewardkit records: majority and soft labels with every annotator's answer
    (annotator_labels for pairs, so `rewardkit data check` reports their agreement), ready for `rewardkit train`."""

    campaign: Positional[str]
    """the campaign's name"""
    db: str = "sqlite:///labels.db"
    """SQLAlchemy URL of the database"""
    output: str = "labels.jsonl"
    """where the records go"""
    format: Literal["records", "label-studio"] = "records"
    """rewardkit records, or Label Studio's JSON tasks with the labels as annotations (pairwise campaigns)"""


def run_export(cfg: ExportConfig) -> int:
    from rewardkit.data.io import write_records
    from rewardkit.label.export import export_records
    from rewardkit.label.quality import campaign_quality
    from rewardkit.label.store import LabelStore

    store = LabelStore(cfg.db)
    campaign = store.campaign(cfg.campaign)
    if campaign is None:
        raise ConfigError(f"no campaign named {cfg.campaign!r} in {cfg.db}")
    rows = store.campaign_labels(cfg.campaign)
    if cfg.format == "label-studio":
        from rewardkit.data.io import atomic_path
        from rewardkit.label.labelstudio import LABEL_CONFIG, to_label_studio

        if campaign["kind"] != "pairwise":
            raise ConfigError("Label Studio export covers pairwise campaigns")
        tasks, ties = to_label_studio(campaign["contents"], rows)
        with atomic_path(cfg.output) as tmp:
            Path(tmp).write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{len(tasks)} Label Studio tasks ({ties} tie labels left out: its Pairwise control has no tie) -> "
              f"{cfg.output}\nlabelling config:\n{LABEL_CONFIG}")
        return 0
    count = write_records(cfg.output, export_records(campaign["kind"], campaign["contents"], rows))
    quality = campaign_quality(campaign["kind"], rows)
    print(f"{count} labelled items of {len(campaign['contents'])} ({len(rows)} labels) -> {cfg.output}; "
          f"agreement: {quality['agreement'] or 'no item has two labels yet'}")
    return 0


@dataclass
class FromLabelStudioConfig:
    """Turn a Label Studio JSON export of pairwise comparisons into rewardkit pairwise records (majority choice,
    soft probability, annotator_labels), ready for `rewardkit data check` and `rewardkit train`."""

    export: Positional[str]
    """the Label Studio JSON export"""
    output: str = "label-studio.jsonl"
    """where the records go"""
    prompt: str = "prompt"
    """the task data field holding the prompt"""
    first: str = "answer1"
    """the task data field shown on the left"""
    second: str = "answer2"
    """the task data field shown on the right"""


def run_from_label_studio(cfg: FromLabelStudioConfig) -> int:
    from rewardkit.data.io import write_records
    from rewardkit.label.labelstudio import from_label_studio

    count = write_records(cfg.output, from_label_studio(cfg.export, cfg.prompt, cfg.first, cfg.second))
    print(f"{count} labelled pairs -> {cfg.output}")
    return 0


def register(commands: dict[str, Command]) -> None:
    commands["label start"] = Command(StartConfig, run_start, "label records in the browser: a campaign in a database, served")
    commands["label export"] = Command(ExportConfig, run_export,
                                       "a labelling campaign's labels as rewardkit records (or Label Studio tasks)")
    commands["label from-label-studio"] = Command(FromLabelStudioConfig, run_from_label_studio,
                                                  "Label Studio pairwise annotations as rewardkit records")
