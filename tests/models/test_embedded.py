"""The real embedded model (Gemma 3 270M): loading, its default heads, and the paper's effect."""

from __future__ import annotations

from attnsteer.models import EMBEDDED_MODEL_ID, model_identity

EIFFEL = ("Previously, The Eiffel Tower is located in Paris. **Currently, The Eiffel Tower is located in Rome.** "
          "The Eiffel Tower is located in the city of")


def test_embedded_model_shape_and_identity(embedded):
    model, tokenizer = embedded
    assert model_identity(model) == EMBEDDED_MODEL_ID
    assert (model.config.num_hidden_layers, model.config.num_attention_heads) == (18, 4)
    assert model.config.num_key_value_heads == 1  # GQA / MQA
    assert model.config._attn_implementation == "attnsteer_sdpa"
    assert tokenizer.is_fast


def test_fast_tokenizer_matches_transformers_auto_tokenizer(embedded):
    from transformers import AutoTokenizer

    from attnsteer.models.embedded import embedded_model_dir

    _, tokenizer = embedded
    reference = AutoTokenizer.from_pretrained(embedded_model_dir())
    texts = [EIFFEL, "  two  spaces\nand a newline", "émoji 🎉 and 日本語", "<bos> literal", "a"]
    for options in ({}, {"return_offsets_mapping": True}):
        assert tokenizer(texts, **options).data == reference(texts, **options).data
    batch = {"padding": True, "return_special_tokens_mask": True}
    assert tokenizer(texts, **batch).data == reference(texts, **batch).data  # left padding, like Gemma's
    ids = reference(EIFFEL)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)
    assert tokenizer.all_special_tokens == reference.all_special_tokens


def test_embedded_model_equals_from_pretrained_of_its_copy(embedded):
    """load_model reads Gemma's cached copy directly (`load_saved_model`); from_pretrained gives the same model."""
    import torch
    from transformers import AutoModelForCausalLM

    from attnsteer.models.embedded import embedded_model_dir

    model, tokenizer = embedded
    reference = AutoModelForCausalLM.from_pretrained(embedded_model_dir(), dtype=torch.float32)
    weights, reference_weights = model.state_dict(), reference.state_dict()
    assert weights.keys() == reference_weights.keys()
    assert all(torch.equal(weights[key], reference_weights[key]) for key in weights)
    assert model.generation_config.to_dict() == reference.generation_config.to_dict()
    ids = tokenizer(EIFFEL, return_tensors="pt")["input_ids"]
    with torch.no_grad():  # unsteered, the installed attention computes what stock sdpa does
        assert torch.allclose(model(ids).logits, reference(ids).logits, atol=1e-4)


def test_eiffel_tower_answers_rome_steered_and_paris_plain(embedded_steerer):  # the shipped default heads
    steered = embedded_steerer.generate(EIFFEL, max_new_tokens=4)
    plain = embedded_steerer.generate(EIFFEL, max_new_tokens=4, steer=False)
    assert steered.split()[0].strip(".,") == "Rome", steered
    assert plain.split()[0].strip(".,") == "Paris", plain


def test_steering_moves_probability_to_the_new_fact(embedded_steerer):
    steerer = embedded_steerer
    margin = {
        steer: steerer.score(EIFFEL, " Rome", steer=steer) - steerer.score(EIFFEL, " Paris", steer=steer)
        for steer in (False, True)
    }
    assert margin[False] < 0 < margin[True]


def test_all_heads_degenerate_as_the_paper_reports(embedded_steerer):
    steered = embedded_steerer.with_options(heads="all").generate(EIFFEL, max_new_tokens=6)
    words = steered.split()
    assert len(words) >= 3 and len(set(words)) <= 2, steered  # e.g. "Rome Rome Rome Rome"
