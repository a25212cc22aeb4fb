"""`Fusion.compare` over the emulator: costs as charged, cache re-runs, position swapping, intervals."""

from __future__ import annotations

import asyncio
import json
import time

import pandas as pd
import pytest
from helpers import interrupt_when

from fusion_magic import Comparison, Fusion, ledger
from fusion_magic._base.errors import BudgetError, ConfigError
from fusion_magic._studies.grading import contains, exact_match, outcome, parse_grade, wilson
from fusion_magic.emulator import Reply

PANEL = ["a/alpha", "b/beta"]
JUDGE = "j/judge"
GRADER = "g/grader"
BASELINES = ["x/one", "y/two"]
# Distinct prices per model, so a cost put on the wrong approach shows.
PRICES = {
    "a/alpha": {"prompt": "0.000001", "completion": "0.000002"},
    "b/beta": {"prompt": "0.000003", "completion": "0.000015"},
    JUDGE: {"prompt": "0.000002", "completion": "0.000008"},
    "x/one": {"prompt": "0.0000005", "completion": "0.0000015"},
    "y/two": {"prompt": "0.000004", "completion": "0.000012"},
    GRADER: {"prompt": "0.0000007", "completion": "0.0000009"},
}
PROMPTS = ["What is a mutex?", "What is a semaphore?", "What is a monitor?"]
FUSED = f"Synthesis by {JUDGE}"  # how the emulator's judge starts its synthesized answer


@pytest.fixture
def emu(emulator):
    "The shared emulator, listing PRICES in /models and billing with them."
    emulator.models.update(PRICES)
    return emulator


def fusion(**kw) -> Fusion:
    return Fusion(panel=PANEL, judge=JUDGE, **kw)


def charged(emu, *models: str, since: int = 0) -> float:
    "USD the emulator charged for these models since charge number ``since``."
    return sum(cost for model, cost in emu.charges[since:] if model in models)


def grades_of(emu, since: int = 0):
    return [r for r in emu.chats(GRADER, since)]


def shown_as(request) -> tuple[str, str]:
    "The texts the grader saw as answer A and answer B."
    user = request.body["messages"][-1]["content"]
    a = user.split('<response id="A">\n', 1)[1].split("\n</response>", 1)[0]
    b = user.split('<response id="B">\n', 1)[1].split("\n</response>", 1)[0]
    return a, b


def question_of(request) -> str:
    return request.body["messages"][-1]["content"].split("<question>\n", 1)[1].split("\n</question>", 1)[0]


# -- money and the cache ---------------------------------------------------------------------------
def test_costs_in_the_table_equal_what_the_server_charged(emu):
    result = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    frame = result.to_frame()
    assert list(frame.index) == ["fusion (custom)", *BASELINES]
    assert frame.loc["fusion (custom)", "cost_total_usd"] == pytest.approx(charged(emu, *PANEL, JUDGE), rel=1e-9)
    for model in BASELINES:
        assert frame.loc[model, "cost_total_usd"] == pytest.approx(charged(emu, model), rel=1e-9)
        assert frame.loc[model, "cost_mean_usd"] == pytest.approx(charged(emu, model) / 3, rel=1e-9)
    assert result.grading_cost_usd == pytest.approx(charged(emu, GRADER), rel=1e-9)
    assert result.paid_usd == pytest.approx(emu.total_cost, rel=1e-9)
    relative = frame.loc["y/two", "cost_mean_usd"] / frame.loc["fusion (custom)", "cost_mean_usd"]
    assert frame.loc["y/two", "relative_cost"] == pytest.approx(relative)
    # The session ledger saw every call: deliberations, baselines and grader calls.
    assert ledger().totals()["cost_usd"] == pytest.approx(emu.total_cost, rel=1e-9)
    assert list(frame["failures"]) == [0, 0, 0] and list(frame["prompts"]) == [3, 3, 3]
    # 3 deliberations (2 members + judge), 3 × 2 baselines, 3 × 2 baselines × 2 orders of grading.
    assert len(emu.chats()) == 9 + 6 + 12


def test_a_rerun_sends_no_requests_and_reports_the_same_table(emu):
    first = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    sent = len(emu.requests)
    again = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    assert len(emu.requests) == sent, "neither chats nor /models"
    assert again.paid_usd == 0 and all(a.cached for run in again.runs for a in run.answers)
    keep = ["cost_mean_usd", "cost_total_usd", "latency_p50_s", "latency_p95_s", "fusion_win_rate", "wins"]
    pd.testing.assert_frame_equal(again.to_frame()[keep], first.to_frame()[keep])
    assert again.grading_cost_usd == pytest.approx(first.grading_cost_usd)


def test_one_more_baseline_pays_only_for_itself(emu):
    fusion().compare(PROMPTS, ["x/one"], grader=GRADER, progress=False)
    since, paid_before = len(emu.requests), len(emu.charges)
    extended = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    new = emu.chats(since=since)
    assert sorted({r.model for r in new}) == [GRADER, "y/two"]
    assert len(emu.chats("y/two", since)) == 3 and len(emu.chats(GRADER, since)) == 6
    assert extended.paid_usd == pytest.approx(charged(emu, "y/two", GRADER, since=paid_before), rel=1e-9)


def test_baselines_default_to_the_panel_and_reuse_its_answers(emu):
    result = fusion().compare(PROMPTS, grader=GRADER, progress=False)
    assert result.baselines == PANEL
    for model in PANEL:
        assert len(emu.chats(model)) == 3, "each panel answer is bought once and reused as the baseline"
        assert all(run.answer(model).cached and run.answer(model).paid_usd == 0 for run in result.runs)
    assert result.to_frame().loc["a/alpha", "cost_total_usd"] == pytest.approx(charged(emu, "a/alpha"))
    # The estimate of what is new counts each panel answer once: the baselines add only their grading.
    alone = fusion().compare(["A fresh question?"], grader=False, progress=False)
    assert alone.estimate_new_usd == pytest.approx(alone.estimate_usd - _solo_estimate("A fresh question?", PANEL))


def test_max_cost_refuses_before_sending_and_counts_only_what_is_new(emu, capsys):
    with pytest.raises(BudgetError) as info:
        fusion().compare(PROMPTS, BASELINES, grader=GRADER, max_cost=0.0001, progress=False)
    assert "exceeds max_cost $0.0001; nothing was sent" in str(info.value) and "\n" not in str(info.value)
    assert emu.chats() == []
    fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=True)
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("compare: 3 prompts × (custom fusion + 2 baselines) + 12 grader calls: about $")
    sent = len(emu.chats())
    # Everything is cached now: nothing new to pay for, so the same cap lets it through.
    fusion().compare(PROMPTS, BASELINES, grader=GRADER, max_cost=0.0001, progress=True)
    assert len(emu.chats()) == sent
    assert "about $0 to pay now" in capsys.readouterr().out


def test_the_estimate_counts_every_call(emu):
    from fusion_magic._engine.pricing import count_tokens

    result = fusion().compare(PROMPTS[:1], ["x/one"], grader=GRADER, progress=False)
    price = {m: (float(p["prompt"]), float(p["completion"])) for m, p in PRICES.items()}
    tokens = count_tokens(PROMPTS[0])
    fused = (
        tokens * (price["a/alpha"][0] + price["b/beta"][0])
        + 600 * (price["a/alpha"][1] + price["b/beta"][1])
        + (tokens + 1200 + 700) * price[JUDGE][0]
        + 1200 * price[JUDGE][1]
    )
    solo = tokens * price["x/one"][0] + 600 * price["x/one"][1]
    grade = 2 * ((tokens + 1200 + 350) * price[GRADER][0] + 150 * price[GRADER][1])
    assert result.estimate_usd == pytest.approx(fused + solo + grade, rel=1e-9)
    assert result.estimate_new_usd == pytest.approx(result.estimate_usd)


def test_an_interrupt_keeps_what_arrived_and_the_rerun_pays_only_the_rest(emu):
    emu.script("y/two", Reply(latency=5))

    # Interrupt once both deliberations and the fast baseline are paid for, while y/two still thinks.
    def ready() -> bool:
        paid = [m for m, _ in emu.charges]
        return paid.count(JUDGE) == 2 and paid.count("x/one") == 2

    watcher = interrupt_when(ready, after=0.1)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fusion().compare(PROMPTS[:2], BASELINES, grader=GRADER, progress=False)
    watcher.join()
    assert time.monotonic() - started < 4, "the slow baseline was cancelled, not waited for"
    time.sleep(0.3)  # let the server see the cancelled requests
    assert all(r.cancelled for r in emu.chats("y/two")) and not emu.chats(GRADER)
    emu.script("y/two", Reply())
    since, paid_before = len(emu.requests), len(emu.charges)
    result = fusion().compare(PROMPTS[:2], BASELINES, grader=GRADER, progress=False)
    assert sorted({r.model for r in emu.chats(since=since)}) == [GRADER, "y/two"]
    assert len(emu.chats("y/two", since)) == 2 and len(emu.chats(GRADER, since)) == 2 * 2 * 2
    assert result.paid_usd == pytest.approx(charged(emu, "y/two", GRADER, since=paid_before), rel=1e-9)


def test_the_async_form(emu):
    async def main():
        return await fusion().acompare(PROMPTS[:2], ["x/one"], grader=GRADER)

    result = asyncio.run(main())
    assert isinstance(result, Comparison) and len(result.runs) == 2 and result.grading == "pairwise"
    assert result.paid_usd == pytest.approx(emu.total_cost, rel=1e-9)


# -- pairwise grading ----------------------------------------------------------------------------
def test_every_pair_is_graded_in_both_orders(emu):
    emu.script(GRADER, Reply(grade="A"))  # a grader that always prefers the first answer
    result = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    requests = grades_of(emu)
    assert len(requests) == len(PROMPTS) * len(BASELINES) * 2
    for prompt in PROMPTS:
        for model in BASELINES:
            seen = [shown_as(r) for r in requests if question_of(r) == prompt and f"{model} here" in str(r.body)]
            assert len(seen) == 2
            firsts = sorted("fused" if a.startswith(FUSED) else "baseline" for a, _ in seen)
            assert firsts == ["baseline", "fused"], "the fused answer is shown first once and second once"
            assert {b.startswith(FUSED) for _, b in seen} == {True, False}
    # The position bias cancels: each order's verdict favours whoever came first, so every prompt is a tie.
    frame = result.to_frame()
    assert list(frame.loc[BASELINES, "ties"]) == [3, 3] and list(frame.loc[BASELINES, "fusion_win_rate"]) == [0.5, 0.5]
    long = result.per_prompt()
    rows = long[long["approach"] == "x/one"]
    assert set(rows["fusion_first"]) == {"fusion"} and set(rows["baseline_first"]) == {"baseline"}
    assert all("Answer A is better." in r for r in rows["reasons"])


def test_win_rate_and_its_wilson_interval_on_a_constructed_case(emu):
    prompts = [f"Question number {i}?" for i in range(10)]

    def grade(question, a, b):  # fusion wins 8 of 10 prompts in both orders, loses 2
        fused_is_a = a.startswith(FUSED)
        fusion_wins = int(question.split()[2].rstrip("?")) < 8
        return ("A" if fused_is_a == fusion_wins else "B"), f"judged on {question}"

    emu.script(GRADER, Reply(grade=grade))
    frame = fusion().compare(prompts, ["x/one"], grader=GRADER, progress=False).to_frame()
    row = frame.loc["x/one"]
    assert (row["wins"], row["ties"], row["losses"]) == (8, 0, 2)
    assert row["fusion_win_rate"] == pytest.approx(0.8)
    # Wilson 95 % for 8 of 10, as published: 0.4902 to 0.9433.
    assert (round(row["win_ci_low"], 4), round(row["win_ci_high"], 4)) == (0.4902, 0.9433)


def test_wilson_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson score, no correction).
    cases = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
        (29, 29): (0.8830, 1.0),
    }
    for (k, n), expected in cases.items():
        assert tuple(round(x, 4) for x in wilson(k, n)) == expected
    assert wilson(0, 0) is None


def test_outcome_of_two_orders():
    assert outcome([1.0, 1.0]) == "win" and outcome([1.0, 0.5]) == "win"
    assert outcome([1.0, 0.0]) == "tie", "a grader that follows the position decides nothing"
    assert outcome([0.0, 0.5]) == "loss" and outcome([0.5, 0.5]) == "tie" and outcome([]) is None


def test_grader_replies_in_many_shapes_are_read():
    assert parse_grade('{"reason": "B is right", "winner": "B"}') == ("B", "B is right")
    assert parse_grade('```json\n{"winner": "Tie", "reason": "same"}\n```') == ("tie", "same")
    assert parse_grade('{"winner": "Response A"}')[0] == "A"
    assert parse_grade('Winner: "A" because it is shorter')[0] == "A"
    with pytest.raises(ValueError):
        parse_grade("I cannot decide.")


def test_a_failed_side_decides_without_a_grader_call(emu):
    emu.script("x/one", Reply(status=400, error_message="context too long"))
    result = fusion().compare(PROMPTS[:2], BASELINES, grader=GRADER, progress=False)
    frame = result.to_frame()
    assert frame.loc["x/one", "failures"] == 2 and frame.loc["x/one", "wins"] == 2
    assert len(grades_of(emu)) == 2 * 2, "only y/two needed the grader"
    pairing = result.runs[0].pairings[0]
    assert pairing.outcome == "win" and "the baseline gave no answer" in pairing.note
    assert "context too long" in result.runs[0].answer("x/one").error


def test_an_unreadable_grader_reply_is_kept_as_an_error(emu):
    emu.script(GRADER, Reply(json_valid=False))
    result = fusion().compare(PROMPTS[:1], ["x/one"], grader=GRADER, progress=False)
    pairing = result.runs[0].pairings[0]
    assert pairing.outcome is None and pairing.note == "the grader gave no verdict"
    assert all(g.error and "no verdict" in g.error for g in pairing.grades)
    assert result.to_frame().loc["x/one", "fusion_win_rate"] is None or pd.isna(
        result.to_frame().loc["x/one", "fusion_win_rate"]
    )


def test_a_server_without_structured_output_still_grades(emu):
    # The first grading request is refused for its response_format; asked again without it, it answers.
    emu.script(GRADER, Reply(status=400, error_message="response_format is not supported"), Reply(grade="tie"))
    result = fusion().compare(PROMPTS[:1], ["x/one"], grader=GRADER, progress=False)
    requests = grades_of(emu)
    assert len(requests) == 3 and sum("response_format" not in r.body for r in requests) == 1
    assert [g.winner for g in result.runs[0].pairings[0].grades] == ["tie", "tie"]


def test_the_judge_grades_by_default(emu):
    result = fusion().compare(PROMPTS[:1], ["x/one"], progress=False)
    assert result.grader == JUDGE and result.grading == "pairwise"
    assert len(emu.chats(JUDGE)) == 1 + 2, "the deliberation's judge call and two grading calls"


# -- reference grading ---------------------------------------------------------------------------
def test_reference_scores_with_the_built_in_scorers(emu):
    emu.script("x/one", "The capital of Australia is Canberra.")
    emu.script("y/two", "canberra")
    questions = pd.Series(["Capital of Australia?", "Capital of Australia, again?"], index=["q1", "q2"])
    expected = ["Canberra", "The Canberra"]
    result = fusion().compare(questions, BASELINES, reference=expected, progress=False)
    frame = result.to_frame()
    assert result.grader == "contains" and result.grading == "reference"
    assert frame.loc["x/one", "score"] == 1.0 and frame.loc["y/two", "score"] == 1.0
    assert frame.loc["fusion (custom)", "score"] == 0.0  # the emulator's synthesis never names a city
    low, high = wilson(2, 2)
    assert (frame.loc["x/one", "score_ci_low"], frame.loc["x/one", "score_ci_high"]) == pytest.approx((low, high))
    assert list(result.per_prompt()["prompt_id"].unique()) == ["q1", "q2"]
    exact = fusion().compare(questions, BASELINES, reference=expected, grader="exact", progress=False)
    assert exact.to_frame().loc["x/one", "score"] == 0.0 and exact.to_frame().loc["y/two", "score"] == 1.0
    assert not grades_of(emu)


def test_scorers():
    assert exact_match("  The Canberra. ", "canberra") == 1.0 and exact_match("Canberra, ACT", "Canberra") == 0.0
    assert contains("It is Canberra, ACT.", "canberra") == 1.0 and contains("Canberrans", "Canberra") == 0.0
    assert contains("São Paulo!", "sao paulo") == 1.0 and contains("anything", "") == 0.0


def test_a_custom_scorer_and_a_broken_one(emu):
    result = fusion().compare(
        PROMPTS[:2],
        ["x/one"],
        reference=["mutex", "semaphore"],
        grader=lambda answer, ref: 0.25 if ref in answer else 0.0,
        progress=False,
    )
    assert result.to_frame().loc["x/one", "score"] == 0.25 and result.grader == "<lambda>"
    sent = len(emu.chats())
    with pytest.raises(ConfigError) as info:
        fusion().compare(
            PROMPTS[:2], ["x/one"], reference=["mutex", "semaphore"], grader=lambda a, r: 1.5, progress=False
        )
    message = str(info.value)
    assert "between 0 and 1, got 1.5" in message and "re-run" in message and "\n" not in message
    assert len(emu.chats()) == sent, "the answers came from the cache"


# -- inputs --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompts": pd.DataFrame({"q": ["x"]})}, "one column as prompts, e.g. df['question']"),
        ({"prompts": "one prompt"}, "prompts must be a list or a column of text"),
        ({"prompts": []}, "at least one prompt"),
        ({"prompts": ["ok?", "  "]}, "prompt 1: empty prompt"),
        ({"prompts": ["ok?", 3]}, "prompt 1: the prompt must be text"),
        ({"reference": ["a"]}, "reference has 1 entries for 2 prompts"),
        ({"grader": exact_match}, "a scorer needs expected answers"),
        ({"reference": ["a", "b"], "grader": "j/judge"}, "with reference=, grader is a scorer"),
        ({"baselines": ["x/one", "x/one"]}, "baseline 'x/one' is listed twice"),
        ({"baselines": []}, "baselines is empty"),
        ({"baselines": ["not a model"]}, "malformed model id 'not a model' in baselines"),
        ({"concurrency": 0}, "concurrency must be a positive whole number"),
        ({"max_cost": -1}, "max_cost must be a positive number"),
    ],
)
def test_bad_input_is_one_line_and_sends_nothing(emu, kwargs, message):
    args = {"prompts": ["First?", "Second?"], "baselines": ["x/one"], **kwargs}
    with pytest.raises(ConfigError) as info:
        fusion().compare(args.pop("prompts"), args.pop("baselines"), progress=False, **args)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert emu.requests == []


# -- the result ----------------------------------------------------------------------------------
def test_save_and_load_round_trip(emu, tmp_path):
    emu.script("x/one", Reply(status=500), Reply())  # one retry, so the record is not uniform
    questions = pd.Series(PROMPTS, index=[10, 20, 30])
    result = fusion().compare(questions, BASELINES, grader=GRADER, progress=False)
    path = tmp_path / "comparison.json"
    result.save(path)
    loaded = Comparison.load(path)
    assert loaded == result and loaded.to_dict() == result.to_dict()
    assert [run.label for run in loaded.runs] == [10, 20, 30]
    pd.testing.assert_frame_equal(loaded.to_frame(), result.to_frame())
    pd.testing.assert_frame_equal(loaded.per_prompt(), result.per_prompt())
    assert json.loads(path.read_text())["format"] == "fusion_magic.Comparison"
    (tmp_path / "bad.json").write_text('{"status": "ok"}')
    with pytest.raises(ConfigError, match="not a saved fusion_magic comparison"):
        Comparison.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="cannot read a comparison"):
        Comparison.load(tmp_path / "missing.json")


def test_per_prompt_is_one_row_per_prompt_and_approach(emu):
    result = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    long = result.per_prompt()
    assert len(long) == len(PROMPTS) * 3
    assert list(long["approach"][:3]) == ["fusion (custom)", *BASELINES]
    assert {"prompt_id", "prompt", "answer", "cost_usd", "latency_s", "outcome", "reasons"} <= set(long.columns)
    fused = long[long["approach"] == "fusion (custom)"]
    assert all(a.startswith(FUSED) for a in fused["answer"])
    assert long["cost_usd"].sum() + result.grading_cost_usd == pytest.approx(emu.total_cost, rel=1e-9)


def test_latency_is_the_slowest_member_plus_the_judge(emu):
    emu.script("a/alpha", Reply(latency=0.3))
    emu.script("x/one", Reply(latency=0.2))
    result = fusion().compare(PROMPTS[:1], ["x/one"], grader=False, progress=False)
    fused, solo = result.runs[0].answers
    assert 0.3 <= fused.latency_s < 1.5 and 0.2 <= solo.latency_s < fused.latency_s
    assert result.grading == "none" and "fusion_win_rate" not in result.to_frame()
    again = fusion().compare(PROMPTS[:1], ["x/one"], grader=False, progress=False)
    assert again.runs[0].answers[0].latency_s == fused.latency_s, "a cached answer keeps its first latency"


def test_html_has_the_table_and_a_scatter(emu):
    result = fusion().compare(PROMPTS, BASELINES, grader=GRADER, progress=False)
    page = result._repr_html_()
    assert "<table>" in page and "fusion wins [95% CI]" in page and "Wilson score interval" in page
    assert 'src="data:image/png;base64,' in page and "<script" not in page and 'src="http' not in page
    text = repr(result)
    assert text.splitlines()[0].startswith("Comparison: 3 prompts, fusion (custom) vs x/one, y/two")
    assert "x/one" in text and "×" in text


# -- %fusion compare -----------------------------------------------------------------------------
def test_the_magic_compares_a_dataframe_column(emu, ip):
    ip.user_ns["df"] = pd.DataFrame({"question": PROMPTS[:2], "expected": ["mutex", "semaphore"]})
    ip.run_cell(
        f"%fusion compare df.question --panel {','.join(PANEL)} -j {JUDGE} -b x/one --reference expected -o table"
    )
    table = ip.user_ns["table"]
    assert isinstance(table, Comparison) and ip.user_ns["_compare"] is table
    assert table.grading == "reference" and table.baselines == ["x/one"] and len(table.runs) == 2
    assert table.to_frame().loc["x/one", "score"] == 1.0  # the emulator's answers echo the question
    # A list variable and NAME[column] work too; pairwise with a named grader.
    ip.user_ns["questions"] = PROMPTS[:1]
    ip.run_cell(f"%fusion compare questions --panel {','.join(PANEL)} -j {JUDGE} -b x/one --grader {GRADER}")
    assert ip.user_ns["_compare"].grading == "pairwise" and len(grades_of(emu)) == 2
    ip.run_cell(f"%fusion compare df[question] --panel {','.join(PANEL)} -j {JUDGE} -b x/one --grader none")
    assert ip.user_ns["_compare"].grading == "none"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%fusion compare nothing_here -b x/one", "no variable 'nothing_here' in the notebook"),
        ("%fusion compare df -b x/one", "df is a DataFrame: name the prompt column with --column"),
        ("%fusion compare df --column nope -b x/one", "df has no column 'nope'"),
        ("%fusion compare df.nope -b x/one", "'df.nope': df has no 'nope'"),
        ("%fusion compare 'df + 1' -b x/one", "name a variable, NAME.column or NAME[column]"),
        ("%fusion compare df.question -b x/one -o 1x", "-o needs a Python variable name"),
        ("%fusion compare df.question -b x/one --grader exact", "a scorer needs expected answers"),
        ("%fusion compare df.question -b x/one --max-cost 0.0000001", "nothing was sent"),
        ("%fusion compare", "%fusion compare: the following arguments are required: prompts"),
    ],
)
def test_magic_mistakes_are_one_line(emu, ip, line, message):
    from IPython.core.error import UsageError

    ip.user_ns["df"] = pd.DataFrame({"question": PROMPTS[:2]})
    with pytest.raises(UsageError) as info:
        ip.run_cell(line + f" --panel {','.join(PANEL)} -j {JUDGE}")
    assert type(info.value) is UsageError and message in str(info.value)
    assert emu.chats() == []


def _solo_estimate(prompt: str, models: list[str]) -> float:
    "The documented estimate of single calls: ~4 characters a token in, 600 tokens out."
    from fusion_magic._engine.pricing import count_tokens

    tokens = count_tokens(prompt)
    return sum(tokens * float(PRICES[m]["prompt"]) + 600 * float(PRICES[m]["completion"]) for m in models)
