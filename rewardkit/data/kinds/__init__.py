"""Record kinds: each kind of feedback record in one module that says what it means everywhere.

Generic code (reading, scoring, training, evaluation) looks a record's kind up in KINDS and asks it (see base.py
for the vocabulary) instead of branching on its name. Adding a kind is a module here (its schema, responses,
scored fields, training targets and loss), its pure loss in rewardkit.losses, one line in KINDS below, and its
tests. Records name their kind with a `kind` key; rewardkit.data.records.infer_kind also recognises the four
kinds below by their fields.
"""

from rewardkit.data.kinds.base import BatchRewards, Kind, score_records
from rewardkit.data.kinds.pairwise import PAIRWISE, preference_uncertainty
from rewardkit.data.kinds.ranking import RANKING
from rewardkit.data.kinds.rating import RATING
from rewardkit.data.kinds.stepwise import STEPWISE
from rewardkit.errors import ConfigError

KINDS: dict[str, Kind] = {k.name: k for k in (PAIRWISE, RANKING, RATING, STEPWISE)}
OBJECTIVES: tuple[str, ...] = tuple(o for k in KINDS.values() for o in k.objectives)


def choose_objectives(kinds: set[str], objective: str) -> dict[str, str]:
    """The objective per trainable kind in the data: each kind's default, except the kind `objective` belongs to.
    An explicit objective must fit at least one kind in the data."""
    trainable = {k: KINDS[k].objectives[0] for k in kinds if KINDS[k].objectives}
    if objective == "auto":
        return trainable
    needed = next(k.name for k in KINDS.values() if objective in k.objectives)
    if needed not in kinds:
        raise ConfigError(f"objective '{objective}' needs {needed} records, but the training data has only "
                          f"{', '.join(sorted(kinds)) or 'no'} records")
    return {**trainable, needed: objective}


__all__ = ["KINDS", "OBJECTIVES", "BatchRewards", "Kind", "choose_objectives", "preference_uncertainty",
           "score_records"]
