"""The labelling database: any SQLAlchemy URL (SQLite by default, one file; PostgreSQL when several people label at
once), its schema and migrations, and every read and write the app makes.

Every submitted label is committed in its own transaction before the page answers, so a crash or a killed server
loses nothing that was acknowledged. `labels.assignment_id` is unique: an assignment takes one label, so a form
submitted twice, or by two tabs at once, is recorded once (the second write fails on the constraint and is reported
as already recorded).
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rewardkit.errors import ConfigError

metadata = sa.MetaData()
campaigns = sa.Table("campaigns", metadata,
                     sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.String(200), nullable=False, unique=True),
                     sa.Column("kind", sa.String(20), nullable=False),
                     sa.Column("settings", sa.Text, nullable=False),   # JSON: attributes, scale, source file
                     sa.Column("created_at", sa.String(40), nullable=False))
items = sa.Table("items", metadata,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("campaign_id", sa.ForeignKey("campaigns.id"), nullable=False, index=True),
                 sa.Column("source_index", sa.Integer, nullable=False),   # the record's line in the source file
                 sa.Column("content", sa.Text, nullable=False),           # JSON: what is shown
                 sa.Column("gold", sa.Text),                              # JSON label, for gold items
                 sa.Column("repeat_of", sa.ForeignKey("items.id")),
                 sa.Column("pooled", sa.Boolean, nullable=False, server_default=sa.false()))  # not yet assigned
annotators = sa.Table("annotators", metadata,
                      sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("campaign_id", sa.ForeignKey("campaigns.id"), nullable=False, index=True),
                      sa.Column("name", sa.String(200), nullable=False),
                      sa.Column("token", sa.String(64), nullable=False, unique=True),
                      sa.Column("role", sa.String(10), nullable=False))  # annotator | admin
assignments = sa.Table("assignments", metadata,
                       sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False),
                       sa.Column("annotator_id", sa.ForeignKey("annotators.id"), nullable=False, index=True),
                       sa.Column("flipped", sa.Boolean, nullable=False),
                       sa.Column("rank", sa.Integer, nullable=False),   # the order an annotator meets items in
                       sa.UniqueConstraint("item_id", "annotator_id"))
labels = sa.Table("labels", metadata,
                  sa.Column("id", sa.Integer, primary_key=True),
                  sa.Column("assignment_id", sa.ForeignKey("assignments.id"), nullable=False, unique=True),
                  sa.Column("value", sa.Text, nullable=False),          # JSON, in the item's own terms (tasks.py)
                  sa.Column("created_at", sa.String(40), nullable=False))
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))


def _create_tables(conn) -> None:
    metadata.create_all(conn, tables=[campaigns, items, annotators, assignments, labels])


def _add_pooled(conn) -> None:
    """Version 2: items can wait in a pool until active selection assigns them."""
    if "pooled" not in {c["name"] for c in sa.inspect(conn).get_columns("items")}:
        conn.execute(sa.text("ALTER TABLE items ADD COLUMN pooled BOOLEAN NOT NULL DEFAULT FALSE"))


# Each migration takes a database from the previous version to the next (version = its position + 1); a new column
# or table is a new entry, written so that it also works on tables the first entry made from today's definitions.
MIGRATIONS = [_create_tables, _add_pooled]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Assignment:
    id: int
    item_id: int
    content: dict
    flipped: bool
    label: dict | None


class LabelStore:
    def __init__(self, url: str = "sqlite:///labels.db"):
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            # WAL: readers do not block the writer, and a killed process leaves committed labels intact.
            sa.event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
        self.migrate()

    def migrate(self) -> int:
        """Bring the schema to the latest version; returns it."""
        with self.engine.begin() as conn:
            schema_version.create(conn, checkfirst=True)
            version = conn.execute(sa.select(schema_version.c.version)).scalar()
            if version is None:
                conn.execute(schema_version.insert().values(version=0))
                version = 0
            for step in MIGRATIONS[version:]:
                step(conn)
            conn.execute(schema_version.update().values(version=len(MIGRATIONS)))
        return len(MIGRATIONS)

    # ------------------------------------------------------------ creating a campaign

    def create_campaign(self, name: str, kind: str, contents: list[dict], gold: list[dict | None], people: list[str],
                        per_item: int = 2, repeats: int = 0, settings: dict | None = None, seed: int = 0,
                        pooled: set[int] | None = None) -> dict:
        """A campaign with its items, one annotator per name and an admin; returns {name: token} ("admin" too).
        Each item goes to `per_item` annotators (round robin over a shuffled list), every gold item to everyone,
        and `repeats` items a second time to the same annotators; each assignment's order is drawn at random.
        Items whose index is in `pooled` wait, unassigned, for active selection (assign_pooled)."""
        if per_item < 1 or per_item > len(people):
            raise ConfigError(f"--per-item {per_item} needs between 1 and {len(people)} annotators")
        if len(set(people)) != len(people) or "admin" in people:
            raise ConfigError("annotator names must be distinct and not 'admin'")
        rng = random.Random(seed)
        tokens = {who: secrets.token_urlsafe(16) for who in [*people, "admin"]}
        pooled = pooled or set()
        with self.engine.begin() as conn:
            try:
                campaign = conn.execute(campaigns.insert().values(
                    name=name, kind=kind, settings=json.dumps(settings or {}), created_at=now())).inserted_primary_key[0]
            except IntegrityError:
                raise ConfigError(f"a campaign named {name!r} exists already in this database") from None
            for who, token in tokens.items():
                conn.execute(annotators.insert().values(campaign_id=campaign, name=who, token=token,
                                                        role="admin" if who == "admin" else "annotator"))
            ids = [conn.execute(items.insert().values(campaign_id=campaign, source_index=index, content=json.dumps(content),
                                                      gold=None if answer is None else json.dumps(answer),
                                                      pooled=index in pooled)).inserted_primary_key[0]
                   for index, (content, answer) in enumerate(zip(contents, gold, strict=True))]
            self._assign(conn, campaign, [i for index, i in enumerate(ids) if index not in pooled], per_item, repeats, rng)
        return tokens

    def _assign(self, conn, campaign: int, item_ids: list[int], per_item: int, repeats: int, rng: random.Random) -> None:
        """Give items to annotators (see create_campaign) and mark them no longer pooled."""
        people = dict(conn.execute(sa.select(annotators.c.name, annotators.c.id).where(
            annotators.c.campaign_id == campaign, annotators.c.role == "annotator")).all())
        order = sorted(people)
        rng.shuffle(order)
        rows = conn.execute(sa.select(items.c.id, items.c.source_index, items.c.content, items.c.gold)
                            .where(items.c.id.in_(item_ids))).all()
        plan, turn = [], rng.randrange(len(order))
        for row in rows:
            if row.gold is not None:
                who = order
            else:
                who = [order[(turn + j) % len(order)] for j in range(per_item)]
                turn += per_item
            plan.append((row.id, who))
        for row_id, who in rng.sample(plan, min(repeats, len(plan))):
            source = conn.execute(sa.select(items).where(items.c.id == row_id)).mappings().one()
            copy = conn.execute(items.insert().values(campaign_id=campaign, source_index=source["source_index"],
                                                      content=source["content"], repeat_of=row_id)).inserted_primary_key[0]
            plan.append((copy, who))
        conn.execute(items.update().where(items.c.id.in_(item_ids)).values(pooled=False))
        for item, who in plan:
            for person in who:
                conn.execute(assignments.insert().values(item_id=item, annotator_id=people[person],
                                                         flipped=rng.random() < 0.5, rank=rng.randrange(1 << 30)))

    def pooled(self, campaign: str) -> list[tuple[int, dict]]:
        """(item id, content) of the campaign's items still waiting in the pool."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(items.c.id, items.c.content).join(campaigns, campaigns.c.id == items.c.campaign_id)
                                .where(campaigns.c.name == campaign, items.c.pooled).order_by(items.c.id)).all()
        return [(row.id, json.loads(row.content)) for row in rows]

    def assign_pooled(self, campaign: str, item_ids: list[int], per_item: int, seed: int = 0) -> None:
        """Take these items out of the pool and give each to `per_item` annotators."""
        with self.engine.begin() as conn:
            campaign_id = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.name == campaign)).scalar_one()
            self._assign(conn, campaign_id, item_ids, per_item, 0, random.Random(seed))

    # ------------------------------------------------------------ what an annotator sees and does

    def person(self, token: str) -> dict | None:
        """{id, name, role, campaign, kind, settings} for a token, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(annotators, campaigns.c.name.label("campaign"), campaigns.c.kind, campaigns.c.settings)
                               .join(campaigns, campaigns.c.id == annotators.c.campaign_id)
                               .where(annotators.c.token == token)).mappings().first()
        if row is None:
            return None
        return {**row, "settings": json.loads(row["settings"])}

    def next_assignment(self, annotator_id: int) -> Assignment | None:
        """The annotator's first unlabelled assignment in their order, or None when they are done."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(assignments.c.id, assignments.c.item_id, assignments.c.flipped, items.c.content)
                .join(items, items.c.id == assignments.c.item_id)
                .outerjoin(labels, labels.c.assignment_id == assignments.c.id)
                .where(assignments.c.annotator_id == annotator_id, labels.c.id.is_(None))
                .order_by(assignments.c.rank)).first()
        return None if row is None else Assignment(row.id, row.item_id, json.loads(row.content), row.flipped, None)

    def assignment(self, annotator_id: int, assignment_id: int) -> Assignment | None:
        """One of this annotator's assignments (None for anyone else's: an annotator sees only their own)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(assignments.c.id, assignments.c.item_id, assignments.c.flipped, items.c.content, labels.c.value)
                .join(items, items.c.id == assignments.c.item_id)
                .outerjoin(labels, labels.c.assignment_id == assignments.c.id)
                .where(assignments.c.id == assignment_id, assignments.c.annotator_id == annotator_id)).first()
        if row is None:
            return None
        return Assignment(row.id, row.item_id, json.loads(row.content), row.flipped,
                          None if row.value is None else json.loads(row.value))

    def submit(self, assignment_id: int, value: dict) -> bool:
        """Record a label, committed before returning; False when the assignment had one already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(labels.insert().values(assignment_id=assignment_id, value=json.dumps(value), created_at=now()))
            return True
        except IntegrityError:
            return False

    def progress(self, annotator_id: int) -> tuple[int, int]:
        """(labelled, assigned) for one annotator."""
        with self.engine.connect() as conn:
            assigned = conn.execute(sa.select(sa.func.count()).select_from(assignments)
                                    .where(assignments.c.annotator_id == annotator_id)).scalar()
            done = conn.execute(sa.select(sa.func.count()).select_from(labels.join(assignments))
                                .where(assignments.c.annotator_id == annotator_id)).scalar()
        return done, assigned

    # ------------------------------------------------------------ reading everything back

    def campaign_labels(self, campaign: str) -> list[dict]:
        """Every label of a campaign: item, source index, annotator, value, shown order flipped, gold, repeat_of."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(items.c.id.label("item"), items.c.source_index, items.c.gold, items.c.repeat_of,
                          annotators.c.name.label("annotator"), assignments.c.flipped, labels.c.value, labels.c.created_at)
                .select_from(labels.join(assignments).join(items).join(annotators)
                             .join(campaigns, campaigns.c.id == items.c.campaign_id))
                .where(campaigns.c.name == campaign).order_by(labels.c.id)).mappings().all()
        return [{**r, "value": json.loads(r["value"]), "gold": None if r["gold"] is None else json.loads(r["gold"])}
                for r in rows]

    def campaign(self, name: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(campaigns).where(campaigns.c.name == name)).mappings().first()
            if row is None:
                return None
            contents = [json.loads(c) for c in conn.execute(
                sa.select(items.c.content).where(items.c.campaign_id == row["id"], items.c.repeat_of.is_(None))
                .order_by(items.c.source_index)).scalars()]
            people = list(conn.execute(sa.select(annotators.c.name).where(annotators.c.campaign_id == row["id"],
                                                                          annotators.c.role == "annotator")).scalars())
        return {**row, "settings": json.loads(row["settings"]), "contents": contents, "annotators": people,
                "pool": self.pool_size(name)}

    def pool_size(self, campaign: str) -> int:
        """How many of the campaign's items wait in the pool."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(items.join(campaigns))
                                .where(campaigns.c.name == campaign, items.c.pooled)).scalar()
