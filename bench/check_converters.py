"""Run every converter over the real files in ../shared/data and record the counts.

    python bench/check_converters.py [--data-dir ../shared/data]

Writes bench/results/converters.json: records out, source rows rejected (with the reasons), and notes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewardkit.data.convert import convert  # noqa: E402
from rewardkit.model.machine import machine_info  # noqa: E402

SOURCES = [("hh-rlhf", "hh-rlhf/harmless-base-test.jsonl.gz"), ("llmbar", "llmbar"), ("offsetbias", "offsetbias/biasbench.json"),
           ("rmb-pairwise", "rmb/pairwise"), ("rmb-bon", "rmb/bon"), ("rm-bench", "rm-bench"), ("judgebench", "judgebench"),
           ("processbench", "processbench"), ("prmbench", "prmbench"),
           ("sharegpt", "format-fixtures/llamafactory-dpo_en_demo.json"),
           ("stack-exchange-paired", "format-fixtures/stack_exchange_paired_tiny.json")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "converters.json"))
    args = parser.parse_args()
    data = Path(args.data_dir)
    if not data.exists():
        print(f"skipped: {data} not found (pass --data-dir)")
        return 0
    results = {}
    for fmt, relative in SOURCES:
        rejects, notes = [], Counter()
        records = list(convert(fmt, data / relative, skip_invalid=True, rejects=rejects, notes=notes))
        results[fmt] = {"source": relative, "records": len(records), "kinds": dict(Counter(r["kind"] for r in records)),
                        "rejected_rows": len(rejects), "reject_reasons": dict(Counter(r.reason for r in rejects).most_common(3)),
                        "notes": dict(notes)}
        print(f"{fmt:<22} {len(records):>6} records  {len(rejects):>4} rejected  {dict(notes) or ''}")
    results["machine"] = machine_info()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
