"""Generative judges: strict parsing (fuzzed), voting, both answer orders and position flips (a scripted fake
model), the judge as a scorer in eval and bon, and judge labels distilled into a scalar reward model through the
loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rewardkit as rk
from rewardkit.eval.scorers import judge_scorer, load_scorer
from rewardkit.generation.base import Generated, Sample, Sampling
from rewardkit.judge import Judge, parse_scores, parse_verdict
from tests.conftest import write_jsonl

# ---------------------------------------------------------------- parsing


def test_parsing_reads_only_answer_lines_in_the_asked_form():
    assert parse_scores("Principles...\nCritique...\nScores: 7, 3", 2) == [7.0, 3.0]
    assert parse_scores("**Scores: 8.5**", 1) == [8.5] and parse_scores("score: 10.", 1) == [10.0]
    assert parse_scores("Scores: 7, 3\nand then the model rambles on", 2) == [7.0, 3.0]
    for bad in ("Scores: 7", "Scores: 11, 3", "Scores: 0, 3", "Scores: 7, 3\nScores: 6, 3", "I'd say 7, 3", "",
                "My scores: 7, 3"):
        assert parse_scores(bad, 2) is None, bad
    assert parse_verdict("A is better.\nVerdict: A") == "A" and parse_verdict("verdict: tie") == "tie"
    assert parse_verdict("`Verdict: B`") == "B"
    assert parse_verdict("Verdict: A\nmore words") == "A" and parse_verdict("Verdict: B\n**Verdict: B**") == "B"
    for bad in ("Verdict: A or B", "Verdict: C", "Verdict: A\nVerdict: B", "The verdict is A", "A: A"):
        assert parse_verdict(bad) is None, bad


@given(st.text(max_size=300), st.integers(min_value=1, max_value=4))
def test_parsing_never_raises_and_never_invents_a_score(text, n):
    scores = parse_scores(text, n)
    assert scores is None or (len(scores) == n and all(1 <= s <= 10 for s in scores))
    assert parse_verdict(text) in (None, "A", "B", "tie")


@given(st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=4), st.text(max_size=200))
def test_any_preamble_before_a_well_formed_last_line_parses(scores, preamble):
    text = preamble + "\nScores: " + ", ".join(map(str, scores))
    assert parse_scores(text, len(scores)) == [float(s) for s in scores]


# ---------------------------------------------------------------- a scripted judge


def response_of(prompt: str) -> str:
    """The response inside a pointwise judge prompt (the template's own words mention good answers)."""
    return prompt.split("[Response 1]\n")[1].split("\n\n")[0]


class Scripted:
    """A fake generation backend: `answer(prompt, j)` is the j-th sample's text for a prompt."""

    name = "scripted"

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def generate(self, prompts, n, sampling, progress=False):
        self.calls.append((len(prompts), n))
        return Generated([[Sample(self.answer(p, j)) for j in range(n)] for p in prompts])


def test_voting_averages_the_parsed_votes_and_counts_the_rest():
    votes = {"good": ["Scores: 8", "Scores: 6", "no idea"], "bad": ["Scores: 2", "???", "Scores: 3"], "odd": ["x", "y", "z"]}
    judge = Judge(Scripted(lambda p, j: next(v for key, v in votes.items() if key in response_of(p))[j]), k=3)
    ratings = judge.rate([("q", "good answer"), ("q", "bad answer"), ("q", "odd answer")])
    assert ratings.scores[:2] == [7.0, 2.5] and math.isnan(ratings.scores[2])
    assert ratings.votes[0] == [8.0, 6.0, None] and ratings.failures == 5
    assert judge.generator.calls == [(3, 3)]  # one call, k samples per judge prompt


def test_both_orders_catch_a_judge_that_always_picks_the_first_position():
    always_a = Judge(Scripted(lambda p, j: "Verdict: A"), k=2)
    (v,) = always_a.compare([("q", "x", "y")])
    assert v.flip and v.p_first == 0.5 and v.votes == ["first", "first", "second", "second"]
    (once,) = always_a.compare([("q", "x", "y")], both_orders=False)
    assert not once.flip and once.p_first == 1.0
    content = Judge(Scripted(lambda p, j: "Verdict: A" if p.index("good one") < p.index("bad one") else "Verdict: B"))
    (w,) = content.compare([("q", "bad one", "good one")])
    assert not w.flip and w.p_first == 0.0 and w.failures == 0
    broken = Judge(Scripted(lambda p, j: "hmm"))
    (b,) = broken.compare([("q", "x", "y")])
    assert b.p_first is None and b.failures == 2 and not b.flip


def prefers_good(prompt: str, j: int) -> str:
    """A content-aware fake judge: rates or prefers responses that say 'good'."""
    if "[Response A]" in prompt:
        a, b = prompt.split("[Response A]")[1].split("[Response B]")
        b = b.split("\n\n")[0]  # the response, not the instructions after it
        return "Reasoning.\nVerdict: " + ("A" if "good" in a and "good" not in b else "B" if "good" in b else "tie")
    return "Critique.\nScores: " + ("9" if "good" in response_of(prompt) else "2")


def test_a_judge_is_a_scorer_in_eval_and_bon():
    from rewardkit.bon import Pool, best_of_n, score_pools

    scorer = judge_scorer(Judge(Scripted(prefers_good)))
    records = [{"prompt": f"q{i}", "chosen": "a good reply", "rejected": "a weak reply"} for i in range(6)]
    report = rk.evaluate(scorer, records, probes=0, resamples=20)
    assert report["pairwise"]["accuracy"]["accuracy"] == 1.0 and scorer.info["parse_failures"] == 0
    fair = report["position_bias"]  # the judge also sees both responses: eval measures its position bias
    assert fair["applicable"] and fair["flip_rate"] == 0.0 and fair["first_position_preference"] == 0.5
    biased = rk.evaluate(judge_scorer(Judge(Scripted(lambda p, j: "Scores: 5" if "[Response A]" not in p else "Verdict: A"))),
                         records, probes=0, resamples=20)["position_bias"]
    assert biased["flip_rate"] == 1.0 and biased["first_position_preference"] == 1.0 and biased["accuracy_both_orders"] == 0.5
    pools = [Pool("q", ["meh", "a good one", "nope"])]
    chosen, _ = best_of_n(pools, score_pools(scorer, pools))
    assert chosen[0]["response"] == "a good one"


# ---------------------------------------------------------------- labels through a real server, distilled


def test_judge_labels_from_a_server_train_a_scalar_reward_model(tiny_bert_no_dropout, tmp_path):
    from rewardkit.cli import main
    from tests.test_generation import ChatServer

    server = ChatServer(lambda body: prefers_good(body["messages"][-1]["content"], 0))
    try:
        pairs = [{"prompt": f"Question {i}?", "chosen": f"a good answer {i}", "rejected": f"a poor answer {i}"}
                 for i in range(10)]
        pairs[3] = {**pairs[3], "chosen": pairs[3]["rejected"], "rejected": pairs[3]["chosen"]}  # a wrong human label
        write_jsonl(tmp_path / "pairs.jsonl", pairs)
        out = tmp_path / "labels.jsonl"
        assert main(["judge", "label", str(tmp_path / "pairs.jsonl"), "--judge", f"{server.url}#fake", "--k", "2",
                     "--output", str(out), "--no-progress"]) == 0
        judge_as_scorer = load_scorer(f"judge:{server.url}#fake@2")
        assert judge_as_scorer.info["k"] == 2
    finally:
        server.close()
    labelled = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(labelled) == 10 and all("good" in r["chosen"] and r["probability"] == 1.0 for r in labelled)
    assert [r["judge"]["agrees_with_label"] for r in labelled].count(False) == 1
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["agreement_with_labels"] == 0.9 and summary["position_flip_rate"] == 0.0
    assert summary["parse_failure_rate"] == 0.0 and len(server.requests) == 10 * 2 * 2
    assert main(["train", "--train", str(out), "--output", str(tmp_path / "rm"), "--backbone", str(tiny_bert_no_dropout),
                 "--max-length", "32", "--batch-size", "4", "--epochs", "1", "--no-progress"]) == 0
    assert (tmp_path / "rm" / "model").exists()


def test_sampling_defaults_greedy_for_one_vote_and_sampled_for_several():
    assert Judge(Scripted(lambda p, j: "")).sampling.temperature == 0.0
    assert Judge(Scripted(lambda p, j: ""), k=4).sampling == Sampling(max_new_tokens=384, temperature=0.7, seed=0)


# ---------------------------------------------------------------- meta RM, rubric grades


def test_meta_rm_keeps_the_critiques_it_rates_highest():
    """Four votes 2, 9, 8, 3 whose critiques a scripted meta RM rates 0.1, 0.9, 0.8, 0.2: with k_meta = 2 only 9 and
    8 are voted (8.5); without the meta RM all four (5.5). An unparsed vote is never kept."""
    from rewardkit.eval.scorers import Scorer
    from rewardkit.scores import Scores

    texts = ["weak critique\nScores: 2", "sharp critique\nScores: 9", "good critique\nScores: 8", "odd critique\nScores: 3"]
    quality = {"weak": 0.1, "sharp": 0.9, "good": 0.8, "odd": 0.2, "junk": 5.0}
    meta = Scorer("meta", lambda items: Scores([quality[critique.split()[0]] for _, critique in items]))
    plain = Judge(Scripted(lambda p, j: texts[j]), k=4)
    guided = Judge(Scripted(lambda p, j: texts[j]), k=4, meta=meta, k_meta=2)
    assert plain.rate([("q", "r")]).scores == [5.5]
    ratings = guided.rate([("q", "r")])
    assert ratings.scores == [8.5] and ratings.votes[0] == [2.0, 9.0, 8.0, 3.0]  # every vote is still reported
    unparsed = Judge(Scripted(lambda p, j: ["junk without a score", *texts][j]), k=3, meta=meta, k_meta=1)
    assert unparsed.rate([("q", "r")]).scores == [9.0]  # the junk is rated 5.0 by the meta RM but has no vote
    # pairwise: in each order, the meta RM picks which votes count
    sides = ["weak\nVerdict: B", "sharp\nVerdict: A"]
    (v,) = Judge(Scripted(lambda p, j: sides[j]), k=2, meta=meta, k_meta=1).compare([("q", "x", "y")])
    assert v.votes == ["second", "first", "first", "second"] and v.p_first == 0.5 and v.flip


def test_judgements_become_records_with_hand_values():
    """Three pairs judged k = 2 in both orders by a judge that names the response containing "good" once and then
    writes junk: pair 0 -> chosen kept at share 1.0; pair 1 (its own label reversed) -> swapped; pair 2 (no "good")
    -> no parsed vote, no record. The meta-RM records are the parsed critiques, scored by the labelled verdict."""
    from rewardkit.judge.records import distillation_records, meta_rm_records

    def answer(prompt, j):
        a, b = (prompt.split(f"[Response {side}]\n")[1].split("\n\n")[0] for side in "AB")
        if j == 1 or "good" not in a + b:
            return "junk"
        return "Verdict: A" if "good" in a else "Verdict: B"

    judge = Judge(Scripted(answer), k=2)
    pairs = [{"prompt": "q0", "chosen": "good 0", "rejected": "bad 0", "id": "p0"},
             {"prompt": "q1", "chosen": "bad 1", "rejected": "good 1", "id": "p1"},
             {"prompt": "q2", "chosen": "meh", "rejected": "meh too", "id": "p2"}]
    records = distillation_records(pairs, judge.compare([(r["prompt"], r["chosen"], r["rejected"]) for r in pairs]),
                                   judge.name)
    assert [(r["id"], r["chosen"], r["probability"], r["judge"]["agrees_with_label"]) for r in records] == [
        ("p0", "good 0", 1.0, True), ("p1", "good 1", 1.0, False)]
    assert records[0]["judge"]["failures"] == 2 and not records[0]["judge"]["position_flip"]
    meta, unparsed = meta_rm_records(judge, pairs)
    assert unparsed == 4 + 4  # one junk sample per question (6) plus pair 2's other two
    assert [r["score"] for r in meta] == [1.0, 0.0, 1.0, 0.0]  # given order: p0 right, p1 wrong; swapped: the same
    assert meta[0]["prompt"] == judge.pairwise_prompt("q0", "good 0", "bad 0") and meta[0]["response"] == "Verdict: A"


def test_rubric_grades_parse_strictly():
    from rewardkit.judge.parse import parse_grade

    assert parse_grade("The answer cites the law.\nGrade: 4") == 4.0
    assert parse_grade("**Grade: 5/5**") == 5.0
    for bad in ("Grade: 6", "I would give it a grade: 3 overall", "Grade: 2\nGrade: 3", "", "Grade: four"):
        assert parse_grade(bad) is None, bad
    judge = Judge(Scripted(lambda p, j: "Feedback.\nGrade: 3" if "RUBRIC-X" in p else "??"), k=1)
    ratings = judge.grade([("q", "r")], "RUBRIC-X: 5 = perfect, 1 = wrong")
    assert ratings.scores == [3.0] and ratings.failures == 0


def test_meta_data_and_grade_commands_through_a_server(tmp_path):
    from rewardkit.cli import main
    from tests.test_generation import ChatServer

    server = ChatServer(lambda body: "Grade: 4" if "Rubric:" in body["messages"][-1]["content"] else "Critique.\nVerdict: A")
    try:
        write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)])
        assert main(["judge", "meta-data", str(tmp_path / "pairs.jsonl"), "--judge", f"{server.url}#fake", "--k", "2",
                     "--output", str(tmp_path / "meta.jsonl"), "--no-progress"]) == 0
        (tmp_path / "rubric.txt").write_text("5: correct and complete; 1: wrong")
        assert main(["judge", "grade", str(tmp_path / "pairs.jsonl"), "--rubric", str(tmp_path / "rubric.txt"),
                     "--judge", f"{server.url}#fake", "--output", str(tmp_path / "graded.jsonl"), "--no-progress"]) == 0
    finally:
        server.close()
    meta = [json.loads(x) for x in open(tmp_path / "meta.jsonl")]
    # "Verdict: A" is right when the chosen response is shown first (3 pairs x 2 votes) and wrong when swapped
    assert len(meta) == 12 and sum(r["score"] for r in meta) == 6 and "Verdict: A" in meta[0]["response"]
    graded = [json.loads(x) for x in open(tmp_path / "graded.jsonl")]
    assert len(graded) == 6 and all(r["score"] == 4.0 for r in graded)


def test_eval_caps_a_judges_critique_length_and_measures_its_position_bias_through_a_server(tmp_path):
    from rewardkit.cli import main
    from tests.test_generation import ChatServer

    server = ChatServer(lambda body: "Verdict: A" if "[Response A]" in body["messages"][-1]["content"] else "Scores: 5")
    try:
        write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)])
        assert main(["eval", f"judge:{server.url}#fake", "--suite", "--input", str(tmp_path / "pairs.jsonl"),
                     "--probes", "0", "--bootstrap", "20", "--judge-max-new-tokens", "7", "--output", str(tmp_path / "out"),
                     "--no-progress"]) == 0
    finally:
        server.close()
    assert {r["body"]["max_tokens"] for r in server.requests} == {7}
    bias = json.loads((tmp_path / "out" / "report.json").read_text())["suites"]["pairs.jsonl"]["position_bias"]
    assert bias["applicable"] and bias["flip_rate"] == 1.0 and bias["first_position_preference"] == 1.0


def test_a_judge_behind_the_server_batches_questions_and_reports_votes():
    pytest.importorskip("fastapi")
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    judge = Judge(Scripted(prefers_good), k=2)
    with BackgroundServer(create_app(judge, ServeConfig(model="judge", max_wait_ms=200))) as server:
        def rate(response):
            return httpx.post(f"{server.url}/v1/score", json={"inputs": [{"prompt": "q", "response": response}]}).json()

        with ThreadPoolExecutor(2) as pool:
            good, poor = pool.map(rate, ["a good answer", "a poor answer"])
        assert good["scores"] == [9.0] and poor["scores"] == [2.0] and good["votes"] == [[9.0, 9.0]]
        assert good["failures"] == 0 and good["seconds_per_judgement"] >= 0
        assert judge.generator.calls[0] == (2, 2)  # the two requests went to the judge as one batch
        verdict = httpx.post(f"{server.url}/v1/compare", json={"prompt": "q", "responses": ["a poor one", "a good one"]}).json()
        assert verdict["p_first"] == 0.0 and not verdict["position_flip"] and len(verdict["votes"]) == 4
        three = httpx.post(f"{server.url}/v1/compare", json={"prompt": "q", "responses": ["a", "b", "c"]})
        assert three.status_code == 422 and "exactly 2" in three.json()["error"]
        assert httpx.post(f"{server.url}/get_reward", json={"query": ["x"]}).status_code == 404


# ---------------------------------------------------------------- rejective fine-tuning


def test_rejective_sampling_keeps_right_critiques_of_questions_not_already_solved():
    from rewardkit.judge.rft import rejective_samples

    def answer(prompt: str, j: int) -> str:
        a = prompt.split("[Response A]")[1].split("[Response B]")[0]
        if "easy" in prompt:     # always names the better response: every sample right
            return "Verdict: " + ("A" if "good" in a else "B")
        if "hopeless" in prompt:  # never parses
            return "I cannot decide."
        return ["Verdict: A", "Verdict: B", "Verdict: tie", "no verdict"][j]  # position-blind: right in one order only

    pairs = [{"prompt": f"{kind} question", "chosen": "good", "rejected": "bad", "id": kind}
             for kind in ("easy", "hopeless", "mixed")]
    records, counts = rejective_samples(Judge(Scripted(answer), k=4), pairs)
    assert counts == {"questions": 6, "samples": 24, "unparsed": 10, "right": 10, "easy_questions": 2,
                      "hopeless_questions": 2, "dropped_to_balance": 0, "kept": 2}
    assert [(r["id"], r["order"], r["completion"]) for r in records] == [("mixed", "given", "Verdict: A"),
                                                                          ("mixed", "swapped", "Verdict: B")]
    kept_all, _ = rejective_samples(Judge(Scripted(answer), k=4), pairs, keep_easy=True)
    assert len(kept_all) == 2 + 8


def test_rejective_sampling_balances_the_verdicts_a_position_biased_judge_gets_right():
    from rewardkit.judge.rft import rejective_samples

    always_a = Judge(Scripted(lambda p, j: "Verdict: A" if j < 3 else "Verdict: B"), k=4)
    pairs = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(3)]
    records, counts = rejective_samples(always_a, pairs)  # 3 right per given order, 1 per swapped order
    assert counts["right"] == 12 and counts["dropped_to_balance"] == 6 and counts["kept"] == 6
    assert sum(r["completion"] == "Verdict: A" for r in records) == sum(r["completion"] == "Verdict: B" for r in records)
    unbalanced, _ = rejective_samples(always_a, pairs, balance=False)
    assert len(unbalanced) == 12


def test_hinted_sampling_asks_hopeless_questions_again_and_keeps_the_plain_prompt():
    from rewardkit.judge.judge import TEMPLATES
    from rewardkit.judge.rft import rejective_samples

    def answer(prompt: str, j: int) -> str:
        if "hint for you alone" not in prompt:
            return "I cannot decide."                    # every question is hopeless without the hint
        named = prompt.split("Response ")[-1][0]          # the hint names the better response last
        return [f"Verdict: {named}", f"The hint says {named}.\nVerdict: {named}", "Verdict: tie", "no verdict"][j]

    pairs = [{"prompt": "q", "chosen": "good", "rejected": "bad", "id": "p"}]
    plain, counts = rejective_samples(Judge(Scripted(answer), k=4), pairs)
    assert plain == [] and counts["hopeless_questions"] == 2 and "hinted_questions" not in counts
    hint = (TEMPLATES / "pairwise_hint.txt").read_text()
    records, counts = rejective_samples(Judge(Scripted(answer), k=4), pairs, hint=hint)
    # per order: one right critique kept, one dropped for naming the hint; A when the chosen is first, B swapped
    assert counts["hinted_questions"] == 2 and counts["hinted_right"] == 2 and counts["hint_mentioned"] == 2
    assert [(r["order"], r["completion"], r["hinted"]) for r in records] == [("given", "Verdict: A", True),
                                                                               ("swapped", "Verdict: B", True)]
    assert all("hint" not in r["prompt"] for r in records)


def test_fine_tuning_a_judge_raises_the_likelihood_of_its_right_critiques(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.generation.local import LocalGenerator
    from rewardkit.judge.rft import fine_tune
    from tests.conftest import make_tiny_causal_lm

    chat = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")
    base = make_tiny_causal_lm(tmp_path / "base", chat)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    with torch.no_grad():  # a random tiny model's logits are nearly flat: give its (not adapted) output layer range
        model.lm_head.weight.mul_(50)
    model.save_pretrained(str(base), safe_serialization=True)
    records = [{"prompt": "Which is better, A or B?", "completion": "A is right. Verdict: A"}] * 8

    def completion_logprob(directory) -> float:
        tok = AutoTokenizer.from_pretrained(str(directory))
        model = AutoModelForCausalLM.from_pretrained(str(directory)).eval()
        prompt = tok.apply_chat_template([{"role": "user", "content": records[0]["prompt"]}], tokenize=False,
                                         add_generation_prompt=True)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + tok(records[0]["completion"], add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logp = model(ids).logits.log_softmax(-1)[0, :-1].gather(1, ids[0, 1:, None]).squeeze(1)
        return float(logp[len(p_ids) - 1:].sum())

    out = fine_tune(base, records, tmp_path / "rft", lora_r=8, epochs=8, lr=1e-1, batch_size=4, max_length=64)
    assert out["optimizer_steps"] == 16
    assert completion_logprob(tmp_path / "rft" / "judge") > completion_logprob(base) + 5
    assert LocalGenerator(str(tmp_path / "rft" / "judge")).tokenizer.chat_template == chat  # a judge loads it


def test_rft_command_refuses_when_no_critique_is_right_and_leaves_no_output(tmp_path, monkeypatch):
    from rewardkit.cli import main
    from rewardkit.judge import cli as judge_cli

    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(4)])
    monkeypatch.setattr(judge_cli, "make_judge", lambda *a, **kw: Judge(Scripted(lambda p, j: "no verdict"), k=2))
    assert main(["judge", "rft", str(data), "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- online RL (SPCT stage 2)


def test_the_rule_reward_pays_only_the_labelled_verdict():
    from rewardkit.judge.online import judge_questions, verdict_reward

    completions = ["A reads better.\nVerdict: A", "Verdict: B", "Verdict: tie", "no verdict at all",
                   [{"role": "assistant", "content": "Verdict: B"}]]
    assert verdict_reward([None] * 5, completions, answer=["A", "A", "A", "B", "B"]) == [1.0, -1.0, -1.0, -1.0, 1.0]
    rows = judge_questions(Judge(Scripted(prefers_good)), [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    assert [r["answer"] for r in rows] == ["A", "B"]
    first, second = (r["prompt"][0]["content"] for r in rows)
    assert first.index("good") < first.index("bad") and second.index("bad") < second.index("good")


def test_online_rl_runs_on_trl_and_a_group_with_one_reward_leaves_the_judge_as_it_was(tmp_path, monkeypatch):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    import torch
    from safetensors.torch import load_file

    from rewardkit.cli import main
    from tests.conftest import make_tiny_causal_lm

    chat = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")
    base = make_tiny_causal_lm(tmp_path / "base", chat)
    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(6)])
    out = tmp_path / "rl"
    assert main(["judge", "rl", str(data), "--judge", f"local:{base}", "--output", str(out), "--steps", "2",
                 "--max-new-tokens", "8", "--lr", "1e-2", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["online_rl"]["curve"]
    # a random tiny model never writes a verdict: every critique earns -1, every advantage is 0, and the KL term has
    # no gradient where the policy is its reference, so the merged judge equals the one it started from
    assert summary["online_rl"]["optimizer_steps"] == 2 and [c["reward"] for c in curve] == [-1.0, -1.0]
    assert summary["held_out_after"]["parse_failure_rate"] == 1.0 and summary["train_pairs"] == 4
    before, after = load_file(base / "model.safetensors"), load_file(out / "judge" / "model.safetensors")
    assert all(torch.allclose(before[k], after[k]) for k in before)
    # rewards that differ within a group do move it (and the moved weights are what is saved)
    from rewardkit.judge import online

    def uneven(prompts, completions, answer, **kwargs):
        return [float(i % 2) for i in range(len(completions))]

    uneven.__name__ = "verdict"
    monkeypatch.setattr(online, "verdict_reward", uneven)
    assert main(["judge", "rl", str(data), "--judge", f"local:{base}", "--output", str(tmp_path / "moved"),
                 "--steps", "2", "--max-new-tokens", "8", "--lr", "1e-2", "--no-progress"]) == 0
    moved = load_file(tmp_path / "moved" / "judge" / "model.safetensors")
    assert not all(torch.allclose(before[k], moved[k]) for k in before)
