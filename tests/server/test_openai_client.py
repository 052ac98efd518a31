"""The official `openai` client, unchanged, against a live server on the embedded Gemma 3 270M."""

from __future__ import annotations

from tests.server.conftest import EIFFEL, MODEL_NAME, NEW_FACT


def test_models_and_health(openai_client, embedded_server):
    assert [model.id for model in openai_client.models.list()] == [MODEL_NAME]
    status, body = embedded_server.get("/health")
    assert status == 200 and b'"status":"ok"' in body


def test_emphasis_changes_the_completion(openai_client, embedded_steerer):
    plain = openai_client.completions.create(model=MODEL_NAME, prompt=EIFFEL, max_tokens=2)
    steered = openai_client.completions.create(model=MODEL_NAME, prompt=EIFFEL, max_tokens=2,
                                               extra_body={"emphasis": [NEW_FACT]})
    assert plain.choices[0].text == " Paris."
    assert steered.choices[0].text.startswith(" Rome")
    assert steered.choices[0].finish_reason == "length"
    assert steered.usage.completion_tokens == 2
    assert steered.usage.prompt_tokens == len(embedded_steerer.tokenizer(EIFFEL)["input_ids"])


def test_served_text_equals_the_library(openai_client, embedded_steerer):
    """Greedy decoding through the server's batcher gives exactly Steerer.generate's tokens."""
    marked = EIFFEL.replace(NEW_FACT, f"**{NEW_FACT}**")
    served = openai_client.completions.create(model=MODEL_NAME, prompt=marked, max_tokens=6,
                                              extra_body={"emphasis_markup": True, "alpha": 0.05})
    library = embedded_steerer.with_options(alpha=0.05).generate(marked, max_new_tokens=6)
    assert served.choices[0].text == library


def test_character_spans_and_list_prompts(openai_client):
    start = EIFFEL.index(NEW_FACT)
    other = "Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome. " \
            "Where is the Eiffel Tower? It is in"
    response = openai_client.completions.create(
        model=MODEL_NAME, prompt=[EIFFEL, other], max_tokens=2,
        extra_body={"emphasis": [[{"start": start, "end": start + len(NEW_FACT)}], []]},
    )
    texts = [choice.text for choice in sorted(response.choices, key=lambda choice: choice.index)]
    alone = openai_client.completions.create(model=MODEL_NAME, prompt=other, max_tokens=2)
    assert texts[0].startswith(" Rome")
    assert texts[1] == alone.choices[0].text  # the unemphasised row of the same request runs plain


def test_streaming_completion_matches_the_whole(openai_client):
    whole = openai_client.completions.create(model=MODEL_NAME, prompt=EIFFEL, max_tokens=6,
                                             extra_body={"emphasis": [NEW_FACT]})
    chunks = list(openai_client.completions.create(model=MODEL_NAME, prompt=EIFFEL, max_tokens=6, stream=True,
                                                   extra_body={"emphasis": [NEW_FACT]}))
    texts = [chunk.choices[0].text for chunk in chunks]
    assert len([text for text in texts if text]) >= 3  # token by token, not one piece
    assert "".join(texts) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_chat_with_emphasis_in_a_message(openai_client):
    messages = [{"role": "user", "content": f"{EIFFEL.rsplit('.', 1)[0]}. Where is the Eiffel Tower located?",
                 "emphasis": [NEW_FACT]}]
    plain = openai_client.chat.completions.create(model=MODEL_NAME, messages=[{k: v for k, v in messages[0].items()
                                                                                if k != "emphasis"}], max_tokens=12)
    # The CounterFact-profiled head 11.2 flips this chat answer; the multi-task default set is gentler.
    steered = openai_client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=12,
                                                    extra_body={"heads": "11.2"})
    assert steered.choices[0].message.role == "assistant"
    assert "Paris" in plain.choices[0].message.content and "Rome" not in plain.choices[0].message.content
    assert "Rome" in steered.choices[0].message.content


def test_chat_streams_and_stops_at_a_new_turn(openai_client):
    request = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "What is the capital of France?"}],
               "max_tokens": 48}
    whole = openai_client.chat.completions.create(**request)
    chunks = list(openai_client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text == whole.choices[0].message.content and text.strip() and "User:" not in text
    finish_reasons = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert [reason for reason in finish_reasons if reason] == [whole.choices[0].finish_reason] == ["stop"]
    assert whole.usage.completion_tokens < request["max_tokens"]  # it stopped at the turn's end, not the limit
    usage = chunks[-1].usage  # the usage chunk comes last, as in the whole reply
    assert (usage.prompt_tokens, usage.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)
