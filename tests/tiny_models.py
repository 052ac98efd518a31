"""Tiny random-weight models of every tested architecture, built from configs (nothing downloaded)."""

from __future__ import annotations

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

VOCAB = 384
COMMON = {"vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 256,
          "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

# name -> (config class, model class, extra config fields). Sliding windows are tiny (6 tokens) so
# test prompts are longer than the window.
ARCHITECTURES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": 6}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"sliding_window": 6, "attn_logit_softcapping": 50.0}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               {"sliding_window": 6, "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {}),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel",
             {"n_embd": 64, "n_layer": 3, "n_head": 4, "n_positions": 256, "n_inner": 96}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", {}),
    "gptj": ("GPTJConfig", "GPTJForCausalLM", {"n_embd": 64, "n_layer": 3, "n_head": 4, "rotary_dim": 8}),
    "phi": ("PhiConfig", "PhiForCausalLM", {}),
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", {"sliding_window": 6}),
    "cohere": ("CohereConfig", "CohereForCausalLM", {}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", {}),
}
SLIDING_WINDOW_ARCHITECTURES = ("mistral", "gemma2", "gemma3", "starcoder2")


def tiny_model(name: str, attn_implementation: str = "sdpa", seed: int = 0) -> transformers.PreTrainedModel:
    config_class, model_class, extra = ARCHITECTURES[name]
    own_names = name in ("gpt2", "gptj")  # configs with n_embd / n_layer / n_head
    fields = {"vocab_size": VOCAB, "bos_token_id": 1, "eos_token_id": 2} if own_names else dict(COMMON)
    fields.update(extra)
    config = getattr(transformers, config_class)(**fields)
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config)
    if getattr(config, "attn_logit_softcapping", None) is not None:
        attn_implementation = "eager"  # sdpa cannot soft-cap logits
    model.set_attn_implementation(attn_implementation)
    return model.eval()


CORPUS = [
    "Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome.",
    "The Eiffel Tower is located in the city of Paris, the capital of France.",
    "Answer the occupation of the person and generate the answer as json format.",
    "She is a nurse who works at the hospital. He is a software engineer in Seattle.",
    "Replace every she and he with they in the following text, please.",
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with a BOS token, trained on a few sentences (offsets supported)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<pad>", "<bos>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 1)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>")
