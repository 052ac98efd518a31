"""lm-eval's --apply_chat_template on the adapter (a tiny model with a ChatML-style template): the emphasis
stays on the IFEval instruction inside the request's user turn, the prompt's tokens are the tokenizer's
own, and whole lm-eval runs (`simple_evaluate`, the CLI wrapper) steer every templated request."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from lm_eval.api.instance import Instance

from attnsteer.chat import PLAIN_STOPS
from attnsteer.integrations.ifeval_spans import instruction_spans, read_ifeval_records
from attnsteer.integrations.lm_eval_chat import ChatContextError, ChatContexts
from attnsteer.integrations.lm_eval_model import AttnsteerLM
from attnsteer.integrations.lm_eval_tasks.ifeval_local_utils import PACKAGED_DATA
from attnsteer.spans import CharSpan
from tests.conftest import CHAT_TEMPLATE
from tests.tiny_models import tiny_model, tiny_tokenizer

DOCS = read_ifeval_records(PACKAGED_DATA)[:2]  # the runs below take lm-eval's first two (--limit 2)
SYSTEM = "Follow the instructions."


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory, chat_tokenizer):
    """A tiny Llama saved with the ChatML-style tokenizer (embeddings resized for its two special tokens)."""
    path = tmp_path_factory.mktemp("tiny-chat-llama")
    model = tiny_model("llama")
    model.resize_token_embeddings(len(chat_tokenizer), mean_resizing=False)
    model.save_pretrained(path)
    chat_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def chat_lm(chat_model_dir):
    return AttnsteerLM(pretrained=str(chat_model_dir), heads="all", emphasis="instruction", batch_size=2)


def user_turn(doc, system=None, shots=()):
    """lm-eval's chat history: a system message, few-shot (question, answer) turns, the request's user turn."""
    history = [{"role": "system", "content": system}] if system else []
    for question, answer in shots:
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return [*history, {"role": "user", "content": doc["prompt"]}]


def instruction(doc, offset=0):
    spans = instruction_spans(doc["prompt"], doc["prompt_without_instruction"])
    return [CharSpan(span.start + offset, span.end + offset) for span in spans]


def tokenizer_ids(tokenizer, messages):
    return tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)["input_ids"]


def no_spaces(text):
    return "".join(text.split())


@pytest.mark.parametrize("doc", DOCS, ids=["summary", "itinerary"])
@pytest.mark.parametrize("kind", ["system_holds_the_same_prompt", "few_shot_turns"])
def test_emphasis_lands_on_the_instruction_inside_the_user_turn(chat_lm, doc, kind):
    other = DOCS[1] if doc is DOCS[0] else DOCS[0]
    messages = (user_turn(doc, system=doc["prompt"]) if kind == "system_holds_the_same_prompt"
                else user_turn(doc, system=SYSTEM, shots=[(doc["prompt"], "Sure."), (other["prompt"], "Fine.")]))
    context = chat_lm.apply_chat_template(messages)
    prepared = chat_lm.prepare(context, doc)
    turn_start = context.rindex(doc["prompt"])  # the last copy: the request's own turn
    assert context.endswith(doc["prompt"] + "<|im_end|>\n<|im_start|>assistant\n")
    assert prepared.text == context
    assert prepared.spans == instruction(doc, turn_start)
    ids, flags = prepared.tokens(chat_lm.tokenizer)
    emphasised = chat_lm.tokenizer.decode([token for token, flag in zip(ids, flags, strict=True) if flag])
    assert no_spaces(emphasised) == no_spaces("".join(context[s.start : s.end] for s in prepared.spans))


@pytest.mark.parametrize("messages", [
    user_turn(DOCS[0]),
    user_turn(DOCS[1], system=SYSTEM),
    user_turn(DOCS[1], system=SYSTEM, shots=[(DOCS[0]["prompt"], "Sure.")]),
], ids=["user", "system", "few_shot"])
def test_templated_prompt_tokens_equal_the_tokenizers_own(chat_lm, messages):
    prepared = chat_lm.prepare(chat_lm.apply_chat_template(messages), DOCS[0] if len(messages) == 1 else DOCS[1])
    ids, flags = prepared.tokens(chat_lm.tokenizer)
    assert ids == tokenizer_ids(chat_lm.tokenizer, messages)
    assert any(flags)


def test_control_token_text_in_the_user_turn_stays_text(chat_lm):
    tokenizer = chat_lm.tokenizer
    doc = {**DOCS[1], "prompt": DOCS[1]["prompt"] + " <|im_end|>"}
    messages = user_turn(doc)
    ids, _ = chat_lm.prepare(chat_lm.apply_chat_template(messages), doc).tokens(tokenizer)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer_ids(tokenizer, messages).count(end) == 2  # the tokenizer alone reads the typed one as a marker
    assert ids.count(end) == 1  # only the template's own marker


def test_marked_baseline_marks_the_instruction_inside_the_user_turn(chat_model_dir):
    lm = AttnsteerLM(pretrained=str(chat_model_dir), heads="all", emphasis="instruction", steer=False, mark="star")
    doc = DOCS[1]
    prepared = lm.prepare(lm.apply_chat_template(user_turn(doc, system=doc["prompt"])), doc)
    [span] = instruction(doc)
    marked = f"{doc['prompt'][: span.start]}*{doc['prompt'][span.start : span.end]}*{doc['prompt'][span.end :]}"
    expected = [{"role": "system", "content": doc["prompt"]}, {"role": "user", "content": marked}]
    assert prepared.text == lm.tokenizer.apply_chat_template(expected, tokenize=False, add_generation_prompt=True)
    assert prepared.spans == []  # not steered
    assert prepared.tokens(lm.tokenizer)[0] == tokenizer_ids(lm.tokenizer, expected)


def generate(lm, messages_per_request, max_gen_toks=5):
    contexts = [lm.apply_chat_template(messages) for messages in messages_per_request]
    requests = [Instance("generate_until", doc, (context, {"until": [], "max_gen_toks": max_gen_toks}), index,
                         ("t", index, 1)) for index, (context, doc) in enumerate(zip(contexts, DOCS, strict=True))]
    return lm.generate_until(requests, disable_tqdm=True)


@pytest.mark.parametrize("model", ["chat_template", "base_model_plain_template"])
def test_batched_generation_equals_steerer_chat_with_the_instruction_emphasised(chat_lm, tiny_model_dir, model):
    lm = chat_lm if model == "chat_template" else AttnsteerLM(
        pretrained=str(tiny_model_dir("llama")), heads="all", emphasis="instruction", batch_size=2)
    messages = [user_turn(doc, system=SYSTEM) for doc in DOCS]
    texts = generate(lm, messages)
    for text, doc, history in zip(texts, DOCS, messages, strict=True):
        spans = [(span.start, span.end) for span in instruction(doc)]
        assert text == lm.steerer.chat(history, emphasize=[None, spans], max_new_tokens=5)
        assert text != lm.steerer.chat(history, emphasize=[None, spans], max_new_tokens=5, steer=False)
    if model == "base_model_plain_template":  # a base model's plain template ends replies at a new turn
        prepared = lm.prepare(lm.apply_chat_template(messages[0]), DOCS[0])
        assert prepared.text.endswith("Assistant:") and prepared.stop == PLAIN_STOPS
        assert lm.chat_template(True).startswith("attnsteer.chat plain template")


def test_templated_loglikelihood_scores_the_continuation_after_the_template(chat_lm):
    import torch

    doc = DOCS[1]
    context = chat_lm.apply_chat_template(user_turn(doc))
    [(total, _)] = chat_lm.loglikelihood([Instance("loglikelihood", doc, (context, "Sure"), 0, ("t", 0, 1))],
                                         disable_tqdm=True)
    prepared = chat_lm.prepare(context, doc)
    ids, flags = prepared.tokens(chat_lm.tokenizer)
    continuation = chat_lm.tokenizer("\nSure", add_special_tokens=False)["input_ids"]  # lm-eval moves the "\n"
    whole = torch.tensor([ids[:-1] + continuation])
    emphasis = torch.tensor([flags[:-1] + [False] * len(continuation)])
    prompt_mask = torch.tensor([[True] * (len(ids) - 1) + [False] * len(continuation)])
    with torch.inference_mode(), chat_lm.steerer.steered({"input_ids": whole}, emphasis, prompt_mask):
        log_probs = torch.log_softmax(chat_lm.model(input_ids=whole).logits[0, :-1].float(), -1)
    expected = sum(float(log_probs[len(ids) - 2 + i, token]) for i, token in enumerate(continuation))
    assert ids[-1] == chat_lm.tokenizer("\n", add_special_tokens=False)["input_ids"][0]
    assert total == pytest.approx(expected, abs=1e-4)


def test_a_context_templated_outside_the_run_or_with_an_answer_prefix_is_refused(chat_lm):
    messages = user_turn(DOCS[0], system="Rendered by the tokenizer alone.")
    rendered_elsewhere = chat_lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    with pytest.raises(ChatContextError, match="--cache_requests"):
        chat_lm.prepare(rendered_elsewhere, DOCS[0])
    with pytest.raises(ChatContextError, match="gen_prefix"):
        chat_lm.apply_chat_template(user_turn(DOCS[0]), add_generation_prompt=False)
    plain = chat_lm.prepare(DOCS[0]["prompt"], DOCS[0])  # an untemplated context is still read as plain text
    assert plain.control == () and plain.spans == instruction(DOCS[0])


def test_a_template_without_a_system_role_renders_without_it(caplog):
    tokenizer = tiny_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = ("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}"
                               "{% endif %}" + CHAT_TEMPLATE)
    chats = ChatContexts(tokenizer)
    with caplog.at_level(logging.WARNING, logger="lm_eval.attnsteer"):
        text = chats.render(user_turn(DOCS[1], system=SYSTEM))
    assert text == tokenizer.apply_chat_template(user_turn(DOCS[1]), tokenize=False, add_generation_prompt=True)
    assert chats.messages(text).roles == ("user",)
    assert "rejects the system role" in caplog.text


def test_simple_evaluate_with_the_chat_template_steers_ifeval(chat_model_dir, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    from attnsteer.integrations.lm_eval_tasks import TASK_DIR
    from attnsteer.integrations.lm_eval_tasks.ifeval_local_utils import process_results

    lm = AttnsteerLM(pretrained=str(chat_model_dir), heads="all", emphasis="instruction", batch_size=2)
    output = lm_eval.simple_evaluate(
        model=lm, tasks=["ifeval_local"], task_manager=TaskManager(include_path=str(TASK_DIR)), limit=2,
        gen_kwargs="max_gen_toks=4", apply_chat_template=True, system_instruction=SYSTEM, log_samples=True)
    assert lm.emphasis_counts == {"steered": 2, "unsteered": 0, "no_span": 0}
    samples = sorted(output["samples"]["ifeval_local"], key=lambda sample: sample["doc_id"])
    for sample, doc in zip(samples, DOCS, strict=True):
        messages = user_turn(doc, system=SYSTEM)
        context = sample["arguments"][0][0]
        assert context == lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        spans = [(span.start, span.end) for span in instruction(doc)]
        assert sample["resps"][0][0] == lm.steerer.chat(messages, emphasize=[None, spans], max_new_tokens=4)
        checked = process_results(sample["doc"], [sample["filtered_resps"][0]])
        assert {metric: sample[metric] for metric in checked} == checked
    prompts = [sample["prompt_level_strict_acc"] for sample in samples]
    assert output["results"]["ifeval_local"]["prompt_level_strict_acc,none"] == pytest.approx(sum(prompts) / 2)


def test_cli_runs_ifeval_with_the_chat_template(chat_model_dir, tmp_path):
    """`attnsteer-lm-eval run ... --apply_chat_template --system_instruction ...`: every request steered."""
    environment = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "attnsteer.integrations.lm_eval_cli", "run", "--model", "attnsteer",
               "--model_args", f"pretrained={chat_model_dir},heads=1.0+1.1,emphasis=instruction",
               "--tasks", "ifeval_local", "--limit", "2", "--gen_kwargs", "max_gen_toks=4",
               "--apply_chat_template", "--system_instruction", SYSTEM,
               "--output_path", str(tmp_path / "out"), "--log_samples"]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "emphasis rule instruction: 2 requests steered, 0 unsteered" in finished.stderr
    [samples_file] = list((tmp_path / "out").glob("*/samples_ifeval_local_*.jsonl"))
    contexts = [json.loads(line)["arguments"]["gen_args_0"]["arg_0"] for line in samples_file.read_text().splitlines()]
    assert sorted(contexts) == sorted(f"<bos><|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{doc['prompt']}"
                                      "<|im_end|>\n<|im_start|>assistant\n" for doc in DOCS)
