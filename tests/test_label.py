"""rewardkit.label: the store, the pages an annotator and an admin use, quality against hand values, export."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from rewardkit.label.app import create_app  # noqa: E402
from rewardkit.label.export import export_records  # noqa: E402
from rewardkit.label.quality import campaign_quality  # noqa: E402
from rewardkit.label.store import LabelStore  # noqa: E402
from rewardkit.label.tasks import FormError, item_from_record, parse_form  # noqa: E402

PAIRS = [{"kind": "pairwise", "prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]


def campaign(tmp_path, records=PAIRS, people=("ann", "bob"), per_item=2, repeats=0, name="c"):
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    made = [item_from_record(r, f"record {i}") for i, r in enumerate(records)]
    tokens = store.create_campaign(name, made[0][0], [m[1] for m in made], [m[2] for m in made], list(people),
                                   per_item, repeats, {"attributes": ["helpful", "honest"], "scale": 5})
    return store, tokens, TestClient(create_app(store))


def answer(client, token: str, **form) -> tuple[int, str]:
    """Open the annotator's next item and submit `form` for it; (status, page or location)."""
    page = client.get(f"/a/{token}").text
    action = re.search(r'action="(/a/[^"]+)"', page).group(1)
    response = client.post(action, data=form, follow_redirects=False)
    return response.status_code, response.headers.get("location", response.text)


def test_assignment_gold_and_repeats(tmp_path):
    records = [*PAIRS[:4], {**PAIRS[4], "gold": True}]
    store, tokens, _ = campaign(tmp_path, records, people=("a", "b", "c"), per_item=2, repeats=2)
    rows = {}
    for who in ("a", "b", "c"):
        person = store.person(tokens[who])
        done, total = store.progress(person["id"])
        rows[who] = total
    # 4 plain items x 2 annotators + the gold item x 3 + 2 repeats x 2 (or 3 when the repeat is the gold item)
    assert sum(rows.values()) in (8 + 3 + 4, 8 + 3 + 5)
    assert len(set(tokens.values())) == 4 and store.person(tokens["admin"])["role"] == "admin"


def test_annotator_labels_a_pair_and_a_double_submit_records_once(tmp_path):
    store, tokens, client = campaign(tmp_path, per_item=1, people=("ann",))
    page = client.get(f"/a/{tokens['ann']}")
    assert page.status_code == 200 and "0 of 6 done" in page.text
    action = re.search(r'action="(/a/[^"]+)"', page.text).group(1)
    first = client.post(action, data={"choice": "A", "strength": "2"}, follow_redirects=False)
    assert first.status_code == 303
    again = client.post(action, data={"choice": "B"}, follow_redirects=False)  # the same form, submitted twice
    assert again.status_code == 303
    rows = store.campaign_labels("c")
    assert len(rows) == 1 and rows[0]["value"]["strength"] == 2
    # "A" is the response shown first: the item's first unless the assignment was flipped
    assert rows[0]["value"]["choice"] == (1 if rows[0]["flipped"] else 0)
    assert "1 of 6 done" in client.get(f"/a/{tokens['ann']}").text


def test_bad_forms_and_other_peoples_pages(tmp_path):
    store, tokens, client = campaign(tmp_path)
    status, text = answer(client, tokens["ann"], choice="C")
    assert status == 422 and "choose A, B or tie" in text
    page = client.get(f"/a/{tokens['bob']}").text
    bobs = re.search(r'action="/a/[^/]+/(\d+)"', page).group(1)
    assert client.post(f"/a/{tokens['ann']}/{bobs}", data={"choice": "A"}).status_code == 404  # not ann's item
    assert client.get(f"/admin/{tokens['ann']}").status_code == 404  # an annotator is not an admin
    assert client.get(f"/a/{tokens['admin']}").status_code == 404
    assert client.get("/a/not-a-token").status_code == 404
    assert store.campaign_labels("c") == []


def test_model_text_is_escaped(tmp_path):
    records = [{"kind": "pairwise", "prompt": "<b>hi</b>", "chosen": "<script>alert(1)</script>", "rejected": "x"}]
    _, tokens, client = campaign(tmp_path, records, people=("ann",), per_item=1)
    page = client.get(f"/a/{tokens['ann']}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;hi&lt;/b&gt;" in page


def test_ranking_rating_and_step_forms():
    _, item, _ = item_from_record({"kind": "ranking", "prompt": "p", "responses": ["x", "y", "z"]}, "r")
    # shown order [2, 1, 0] (flipped); ranks given to what was shown: z=1, y=3, x=2 -> best first: z, x, y
    assert parse_form("ranking", item, [2, 1, 0], {"rank_0": "1", "rank_1": "3", "rank_2": "2"}, [], 5) == {"order": [2, 0, 1]}
    with pytest.raises(FormError, match="different rank"):
        parse_form("ranking", item, [0, 1, 2], {"rank_0": "1", "rank_1": "1", "rank_2": "2"}, [], 5)
    assert parse_form("rating", {}, [0], {"score_a": "4", "score_b": "5"}, ["a", "b"], 5) == {"scores": {"a": 4, "b": 5}}
    with pytest.raises(FormError, match="from 1 to 5"):
        parse_form("rating", {}, [0], {"score_a": "6", "score_b": "5"}, ["a", "b"], 5)
    steps = {"prompt": "p", "steps": ["s0", "s1", "s2"]}
    assert parse_form("steps", steps, [], {"first_wrong": "1"}, [], 5) == {"first_wrong": 1}
    assert parse_form("steps", steps, [], {"first_wrong": "none"}, [], 5) == {"first_wrong": None}
    with pytest.raises(FormError, match="one of the 3 steps"):
        parse_form("steps", steps, [], {"first_wrong": "3"}, [], 5)


def test_a_step_labelled_solution_through_the_pages(tmp_path):
    records = [{"kind": "stepwise", "prompt": "2 + 3 * 4?", "steps": ["3 * 4 = 12", "2 + 12 = 15"], "labels": [True, False]}]
    store, tokens, client = campaign(tmp_path, records, people=("ann",), per_item=1)
    status, _ = answer(client, tokens["ann"], first_wrong="1")
    assert status == 303 and store.campaign_labels("c")[0]["value"] == {"first_wrong": 1}
    assert "All done" in client.get(f"/a/{tokens['ann']}").text
    exported = client.get(f"/admin/{tokens['admin']}/export.jsonl").text
    assert json.loads(exported)["labels"] == [True, False]


def test_quality_matches_hand_values():
    """Two annotators, four items. ann and bob agree on items 1, 2 (both 0) and 3 (both 1), differ on 4:
    p_o = 3/4; ann said 0 three times and 1 once, bob 0 twice and 1 twice: p_e = 3/4*2/4 + 1/4*2/4 = 1/2,
    kappa = (3/4 - 1/2) / (1 - 1/2) = 0.5. Gold: ann right, bob wrong. Repeat of item 1: ann the same, bob not."""
    def row(item, who, choice, flipped=False, gold=None, repeat_of=None):
        return {"item": item, "source_index": item, "annotator": who, "value": {"choice": choice}, "flipped": flipped,
                "gold": gold, "repeat_of": repeat_of}

    rows = [row(1, "ann", 0), row(1, "bob", 0), row(2, "ann", 0, True), row(2, "bob", 0), row(3, "ann", 1),
            row(3, "bob", 1, True), row(4, "ann", 0), row(4, "bob", 1),
            row(5, "ann", 0, gold={"choice": 0}), row(5, "bob", 1, gold={"choice": 0}),
            row(6, "ann", 0, repeat_of=1), row(6, "bob", 1, repeat_of=1)]
    q = campaign_quality("pairwise", rows, threshold=0.7)
    assert q["agreement"]["cohens_kappa"] == pytest.approx(0.5)
    assert q["annotators"]["ann"]["gold_accuracy"] == 1.0 and q["annotators"]["bob"]["gold_accuracy"] == 0.0
    assert q["annotators"]["ann"]["self_consistency"] == 1.0 and q["annotators"]["bob"]["self_consistency"] == 0.0
    assert q["annotators"]["bob"]["flagged"] and not q["annotators"]["ann"]["flagged"]
    # ann picked what was shown first 5 times of 6 (item 2 was flipped: choice 0 was shown second; item 3's
    # choice 1 was shown second)
    assert q["annotators"]["ann"]["picked_shown_first"] == pytest.approx(4 / 6, abs=1e-4)


def test_admin_page_shows_gold_accuracy(tmp_path):
    records = [*PAIRS[:2], {**PAIRS[2], "gold": True}]
    _, tokens, client = campaign(tmp_path, records)
    for who, choice_for_gold in (("ann", "good"), ("bob", "bad")):
        for _ in range(3):
            page = client.get(f"/a/{tokens[who]}").text
            if "All done" in page:
                break
            action = re.search(r'action="(/a/[^"]+)"', page).group(1)
            shown_a = re.findall(r'<pre class="response">([^<]*)</pre>', page)[0]
            # answer the gold item as choice_for_gold says; any other item with A
            pick = "A" if ("question 2" not in page or shown_a.startswith(choice_for_gold)) else "B"
            client.post(action, data={"choice": pick})
    page = client.get(f"/admin/{tokens['admin']}").text
    ann = re.search(r'data-annotator="ann">.*?class="gold">([^<]*)<', page, re.S).group(1).strip()
    bob = re.search(r'data-annotator="bob">.*?class="gold">([^<]*)<', page, re.S).group(1).strip()
    assert (ann, bob) == ("1.0", "0.0")
    assert 'class="flagged" data-annotator="bob"' in page


def test_export_trains_a_model(tmp_path, tiny_bert):
    from rewardkit.cli import main

    store, tokens, client = campaign(tmp_path)
    for who in ("ann", "bob"):
        while "All done" not in (page := client.get(f"/a/{tokens[who]}").text):
            action = re.search(r'action="(/a/[^"]+)"', page).group(1)
            shown_a = re.findall(r'<pre class="response">([^<]*)</pre>', page)[0]
            client.post(action, data={"choice": "A" if shown_a.startswith("good") else "B"})
    assert main(["label", "export", "c", "--db", f"sqlite:///{tmp_path / 'labels.db'}", "--output",
                 str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(x) for x in open(tmp_path / "out.jsonl")]
    assert len(records) == 6 and all(r["chosen"].startswith("good") and r["probability"] == 1.0 for r in records)
    assert all(r["annotator_labels"] == {"ann": "chosen", "bob": "chosen"} for r in records)
    assert main(["data", "check", str(tmp_path / "out.jsonl")]) == 0
    assert main(["train", "--train", str(tmp_path / "out.jsonl"), "--output", str(tmp_path / "run"), "--backbone",
                 str(tiny_bert), "--epochs", "1", "--no-progress", "--eval-fraction", "0.34"]) == 0


def test_export_majority_soft_labels_and_ties():
    item = {"prompt": "p", "responses": ["x", "y"]}
    rows = [{"source_index": 0, "annotator": a, "value": {"choice": c}} for a, c in (("a", 1), ("b", 1), ("c", "tie"))]
    (record,) = export_records("pairwise", [item], rows)
    assert (record["chosen"], record["rejected"], record["probability"]) == ("y", "x", pytest.approx(5 / 6, abs=1e-4))
    assert record["annotator_labels"] == {"a": "chosen", "b": "chosen", "c": "tie"} and "tie" not in record
    ranking = export_records("ranking", [{"prompt": "p", "responses": ["x", "y", "z"]}],
                             [{"source_index": 0, "annotator": "a", "value": {"order": [2, 0, 1]}},
                              {"source_index": 0, "annotator": "b", "value": {"order": [2, 1, 0]}}])[0]
    assert ranking["ranking"] == [2, 2, 1]  # x and y share mean rank 2.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path, records_path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "rewardkit.cli", "label", "start", str(records_path), "--db",
                                f"sqlite:///{tmp_path / 'labels.db'}", "--annotators", "ann", "--per-item", "1",
                                "--port", str(port), "--links", str(tmp_path / "links.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(process.stdout.read())


def test_a_killed_server_keeps_every_label(tmp_path):
    import httpx

    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    port = free_port()
    server = start_server(tmp_path, tmp_path / "pairs.jsonl", port)
    try:
        links = json.loads((tmp_path / "links.json").read_text())
        with httpx.Client() as client:
            for _ in range(3):
                page = client.get(links["ann"]).text
                action = re.search(r'action="(/a/[^"]+)"', page).group(1)
                assert client.post(f"http://127.0.0.1:{port}{action}", data={"choice": "tie"}).status_code == 303
    finally:
        os.kill(server.pid, signal.SIGKILL)  # no shutdown, no flush: what was acknowledged must be on disk
        server.wait()
    server = start_server(tmp_path, tmp_path / "pairs.jsonl", port)
    try:
        exported = httpx.get(links["admin"] + "/export.jsonl").text
        assert len(exported.splitlines()) == 3 and "3 of 6 done" in httpx.get(links["ann"]).text
    finally:
        server.terminate()
        server.wait()


def test_active_selection_order_on_a_scripted_ensemble(tmp_path):
    """Three members score four pooled pairs; disagreement asks first about the pair whose members disagree about
    which response is better (pair 2), margin about the closest call (pair 3)."""
    from rewardkit.eval.scorers import Scorer, score_items
    from rewardkit.label.active import pair_items, rank_pairs
    from rewardkit.label.app import next_batch
    from rewardkit.scores import Scores

    members = {"good 0": [2, 2, 2], "bad 0": [0, 0, 0],         # every member: first by 2
               "good 1": [1, 1, 1], "bad 1": [-1, -1, -1],      # every member: first by 2
               "good 2": [3, -3, 1], "bad 2": [0, 0, 0],        # members disagree; mean margin 1/3
               "good 3": [0.1, 0.1, 0.1], "bad 3": [0, 0, 0]}   # all agree, by a hair

    def score(items):
        rows = [members[response] for _, response in items]
        return Scores([sum(r) / 3 for r in rows], rows)

    scorer = Scorer("scripted", score)
    contents = [{"prompt": f"question {i}", "responses": [f"good {i}", f"bad {i}"]} for i in range(4)]
    scores = score_items(scorer, pair_items(contents))
    assert rank_pairs("disagreement", scores)[0] == 2
    assert rank_pairs("margin", scores)[:2] == [3, 2]
    fresh = LabelStore(f"sqlite:///{tmp_path / 'pool.db'}")
    made = [item_from_record(r, "r") for r in PAIRS[:4]]
    fresh.create_campaign("p", "pairwise", [m[1] for m in made], [None] * 4, ["ann"], 1, settings={"per_item": 1},
                          pooled={0, 1, 2, 3})
    assert len(fresh.pooled("p")) == 4
    assert next_batch(fresh, fresh.campaign("p"), scorer, "disagreement", 1) == 1
    assert [c["responses"][0] for _, c in fresh.pooled("p")] == ["good 0", "good 1", "good 3"]  # pair 2 was asked


def test_an_old_database_is_migrated(tmp_path):
    import sqlalchemy as sa

    from rewardkit.label.store import annotators, assignments, labels, metadata

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # version 1: items without the pool column
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1)"))
        conn.execute(sa.text("CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL UNIQUE, "
                             "kind VARCHAR(20) NOT NULL, settings TEXT NOT NULL, created_at VARCHAR(40) NOT NULL)"))
        conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, source_index "
                             "INTEGER NOT NULL, content TEXT NOT NULL, gold TEXT, repeat_of INTEGER)"))
        conn.execute(sa.text("INSERT INTO campaigns VALUES (1, 'old', 'pairwise', '{}', 'then')"))
        conn.execute(sa.text("INSERT INTO items VALUES (1, 1, 0, '{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"]}', NULL, NULL)"))
        # the other tables are as version 1 made them
        metadata.create_all(conn, tables=[annotators, assignments, labels])
    store = LabelStore(url)
    assert store.migrate() == 2
    assert store.campaign("old")["pool"] == 0 and store.campaign("old")["contents"][0]["prompt"] == "p"


def test_label_studio_round_trip(tmp_path):
    """Labels out to Label Studio's tasks and back as records: the same majority, soft label and annotators."""
    from rewardkit.cli import main

    store, tokens, client = campaign(tmp_path, PAIRS[:3])
    for who in ("ann", "bob"):
        while "All done" not in (page := client.get(f"/a/{tokens[who]}").text):
            action = re.search(r'action="(/a/[^"]+)"', page).group(1)
            shown_a = re.findall(r'<pre class="response">([^<]*)</pre>', page)[0]
            first_is_good = shown_a.startswith("good")
            pick = "tie" if (who == "bob" and "question 2" in page) else ("A" if first_is_good else "B")
            client.post(action, data={"choice": pick})
    db = f"sqlite:///{tmp_path / 'labels.db'}"
    assert main(["label", "export", "c", "--db", db, "--format", "label-studio", "--output", str(tmp_path / "ls.json")]) == 0
    tasks = json.loads((tmp_path / "ls.json").read_text())
    assert [len(t["annotations"]) for t in tasks] == [2, 2, 1]  # bob's tie on question 2 is left out
    assert tasks[0]["annotations"][0]["result"][0]["value"] == {"selected": "left"}
    assert main(["label", "from-label-studio", str(tmp_path / "ls.json"), "--output", str(tmp_path / "back.jsonl")]) == 0
    back = [json.loads(x) for x in open(tmp_path / "back.jsonl")]
    assert [r["chosen"] for r in back] == ["good 0", "good 1", "good 2"]
    assert back[0]["annotator_labels"] == {"ann": "chosen", "bob": "chosen"} and back[0]["probability"] == 1.0
    (tmp_path / "bad.json").write_text(json.dumps([{"id": 7, "data": {"prompt": "p", "answer1": "a", "answer2": "b"},
                                                    "annotations": [{"result": [{"type": "pairwise", "value": {"selected": "up"}}]}]}]))
    assert main(["label", "from-label-studio", str(tmp_path / "bad.json"), "--output", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_concurrent_submissions_record_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store, tokens, client = campaign(tmp_path, PAIRS[:2], people=("ann",), per_item=1)
    person = store.person(tokens["ann"])
    first = store.next_assignment(person["id"])
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: store.submit(first.id, {"choice": i % 2}), range(16)))
    assert outcomes.count(True) == 1 and len(store.campaign_labels("c")) == 1


def test_trajectory_clips_are_labelled_and_export_for_control_fit(tmp_path):
    """Two control segments per item, drawn as SVG animations; the export is a segment pair file control fit reads."""
    import numpy as np

    from rewardkit.cli import main
    from rewardkit.control.segments import Segment, read_pairs, write_pairs

    rng = np.random.default_rng(0)
    seg = lambda: Segment(rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32),  # noqa: E731
                          "reach the <red> target")
    write_pairs(tmp_path / "q.jsonl", [(seg(), seg()) for _ in range(2)], np.array([1.0, 0.0]))
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    from rewardkit.label.tasks import read_for_labelling

    made = [item_from_record(r, "r") for r in read_for_labelling(str(tmp_path / "q.jsonl"))[0]]
    assert {m[0] for m in made} == {"clips"}
    tokens = store.create_campaign("clips", "clips", [m[1] for m in made], [m[2] for m in made], ["ann"], 1)
    client = TestClient(create_app(store))
    page = client.get(f"/a/{tokens['ann']}").text
    assert page.count("<animateMotion") == 2 and "reach the &lt;red&gt; target" in page
    for _ in range(2):
        status, _ = answer(client, tokens["ann"], choice="A")
        assert status == 303
    assert main(["label", "export", "clips", "--db", f"sqlite:///{tmp_path / 'labels.db'}", "--output",
                 str(tmp_path / "out.jsonl")]) == 0
    pairs, labels = read_pairs(tmp_path / "out.jsonl")
    assert len(pairs) == 2 and set(labels.tolist()) <= {0.0, 1.0}
    assert pairs[0][0].instruction == "reach the <red> target"


def test_a_bon_output_becomes_ranking_items(tmp_path):
    from rewardkit.label.tasks import read_for_labelling

    candidates = [{"response": f"r{v}", "score": v, "value": v} for v in (5, 1, 3, 9, 7, 2)] + [
        {"response": None, "score": None, "value": None, "error": "timeout"}]
    rows = [{"id": "p0", "prompt": "q", "chosen": 3, "candidates": candidates, "provenance": {"n": 7}},
            {"id": "p1", "prompt": "q2", "chosen": 0, "candidates": candidates[:2], "provenance": {"n": 2}},
            {"id": "p2", "prompt": "q3", "chosen": 0, "candidates": candidates[:1] + candidates[-1:], "provenance": {"n": 2}}]
    (tmp_path / "bon.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (first, second), left_out = read_for_labelling(str(tmp_path / "bon.jsonl"), most_candidates=4)
    assert left_out == 1  # p2 has one usable candidate: nothing to compare, counted
    # six usable, sorted 9 7 5 3 2 1; four evenly spaced: positions 0, 2 (5/3*... rounds to 2), 3, 5
    assert first == {"kind": "ranking", "prompt": "q", "responses": ["r9", "r5", "r3", "r1"]}
    assert second == {"kind": "pairwise", "prompt": "q2", "chosen": "r5", "rejected": "r1"}


@pytest.mark.skipif(not os.environ.get("REWARDKIT_TEST_POSTGRES_URL"),
                    reason="set REWARDKIT_TEST_POSTGRES_URL=postgresql+psycopg://USER:PASS@HOST/DB to run on PostgreSQL")
def test_the_store_on_postgresql():
    """The same store on a shared PostgreSQL server: migrations, labelling through the app, 16 concurrent submissions
    of one assignment recorded once, and quality and export read back."""
    from concurrent.futures import ThreadPoolExecutor

    store = LabelStore(os.environ["REWARDKIT_TEST_POSTGRES_URL"])
    name = f"pg-{os.getpid()}-{time.time_ns()}"
    made = [item_from_record(r, "r") for r in PAIRS[:3]]
    tokens = store.create_campaign(name, "pairwise", [m[1] for m in made], [m[2] for m in made], ["ann", "bob"], 2)
    client = TestClient(create_app(store))
    status, _ = answer(client, tokens["ann"], choice="A")
    assert status == 303
    person = store.person(tokens["bob"])
    first = store.next_assignment(person["id"])
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: store.submit(first.id, {"choice": i % 2}), range(16)))
    assert outcomes.count(True) == 1 and len(store.campaign_labels(name)) == 2
    assert len(export_records("pairwise", store.campaign(name)["contents"], store.campaign_labels(name))) >= 1
