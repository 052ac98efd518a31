"""Measure the embedded model's provisional default head set on CounterFact train records.

Until head profiling lands, the default set is chosen here, coarse to fine, in three steps:
1. every whole layer (its 4 heads) is steered on the TRAIN records and ranked by the mean gain in
   margin log P(new target) - log P(true target) over unsteered, with the new fact emphasised;
2. each single head of the 3 best layers is steered alone on TRAIN and ranked the same way;
3. the top-N single heads for N in {1, 2, 4, 8} and the best whole layer are compared on the VALID
   records (rewrite and paraphrase prompts) by efficacy (% with P(new) > P(true)); the best set
   (fewest heads on a tie) becomes package data.

Records: a seed-0 permutation of src/attnsteer/tasks/data/counterfact_500.json; TRAIN = the first 40, VALID =
the next 40 (all inside the counterfact task's train split, records 0-99 of the same permutation).
Run: .venv/bin/python scripts/measure_provisional_heads.py [--train 40] [--valid 40] [--write]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import attnsteer
from attnsteer.heads import HeadConfig
from attnsteer.models import EMBEDDED_MODEL_ID

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src/attnsteer/heads/default_sets" / f"{EMBEDDED_MODEL_ID}.json"


def counterfact_items(records: list[dict], paraphrases: bool = False) -> list[tuple[str, str, str]]:
    """(prompt with the new fact in **markup**, new target, true target) per record (and paraphrase)."""
    items = []
    for record in records:
        rewrite = record["requested_rewrite"]
        fact = rewrite["prompt"].format(rewrite["subject"])
        new, true = rewrite["target_new"]["str"], rewrite["target_true"]["str"]
        questions = [fact] + (record["paraphrase_prompts"] if paraphrases else [])
        for question in questions:
            prompt = f"Previously, {fact} {true}. **Currently, {fact} {new}.** {question}"
            items.append((prompt, " " + new, " " + true))
    return items


def margins(steerer: attnsteer.Steerer, items: list[tuple[str, str, str]], steer: bool = True) -> list[float]:
    prompts = [prompt for prompt, _, _ in items]
    new = steerer.score(prompts, [new for _, new, _ in items], steer=steer)
    true = steerer.score(prompts, [true for _, _, true in items], steer=steer)
    return [a - b for a, b in zip(new, true, strict=True)]


def efficacy(values: list[float]) -> float:
    return 100.0 * sum(value > 0 for value in values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--valid", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="write the chosen set as package data")
    args = parser.parse_args()
    records = json.loads((ROOT / "src/attnsteer/tasks/data/counterfact_500.json").read_text())
    random.Random(0).shuffle(records)
    train = counterfact_items(records[: args.train])
    valid = counterfact_items(records[args.train : args.train + args.valid], paraphrases=True)

    model, tokenizer = attnsteer.load_model()
    base = attnsteer.Steerer(model, tokenizer, heads="0.0")
    started = time.perf_counter()
    plain_train = sum(margins(base, train, steer=False)) / len(train)

    def gain(spec: str) -> float:
        value = sum(margins(base.with_options(heads=spec), train)) / len(train) - plain_train
        print(f"heads {spec}: mean margin gain {value:+.3f} nats", flush=True)
        return value

    layers = sorted(((gain(str(layer)), layer) for layer in range(model.config.num_hidden_layers)), reverse=True)
    best_layer = layers[0][1]
    ranking = sorted(((gain(f"{layer}.{head}"), f"{layer}.{head}") for _, layer in layers[:3]
                      for head in range(model.config.num_attention_heads)), reverse=True)
    print(f"sweep took {time.perf_counter() - started:.0f} s; heads ranked: {[h for _, h in ranking]}")
    candidates = {f"top{n}": ",".join(h for _, h in ranking[:n]) for n in (1, 2, 4, 8)}
    candidates[f"layer{best_layer}"] = str(best_layer)
    print(f"valid zero-shot efficacy: {efficacy(margins(base, valid, steer=False)):.1f}%")
    results = {}
    for name, spec in candidates.items():
        results[name] = efficacy(margins(base.with_options(heads=spec), valid))
        print(f"valid efficacy {name} ({spec}): {results[name]:.1f}%", flush=True)
    shape = model.config.num_hidden_layers, model.config.num_attention_heads
    # Best efficacy; on a tie, the fewest heads (steering more heads than needed costs fluency).
    sizes = {name: HeadConfig.parse(spec, *shape).num_heads_steered for name, spec in candidates.items()}
    chosen = max(results, key=lambda name: (results[name], -sizes[name]))
    heads = HeadConfig.parse(candidates[chosen], *shape)
    print(f"chosen: {chosen} = {heads}")
    if args.write:
        entry = {
            "model_id": EMBEDDED_MODEL_ID, "num_layers": model.config.num_hidden_layers,
            "num_heads": model.config.num_attention_heads, "heads": heads.as_dict(),
            "provenance": f"provisional; scripts/measure_provisional_heads.py --train {args.train} "
                          f"--valid {args.valid}: {chosen}, valid efficacy {results[chosen]:.1f}%",
        }
        OUTPUT.write_text(json.dumps(entry, indent=1) + "\n")
        print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
