"""Entity confidences from the greedy parse itself, at the cost of the parse.

spaCy's NER decodes greedily: at each token its transition model scores every action (B-, I-, L-, U-<label>, O)
and takes the best valid one, in compiled code that keeps the scores to itself. Here the same greedy decoding
runs step by step over the whole batch, so each token's choice keeps its probability: the softmax of the chosen
action's score among the valid actions (checked best first, until the actions left carry no mass to speak of). An
entity's confidence is the product of its tokens' probabilities, the probability of the greedy path through it.
The entities are exactly those ``nlp.pipe`` finds (the same model, the same choices); the cost is one pass,
where a beam search for confidences adds a second, wider one.

Pipelines whose NER decodes with a beam (``beam_ner``) keep their beam: an entity's confidence there is the mass
of the beam parses that hold exactly that span with that label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

NEGLIGIBLE = 1e-5  # actions are checked for validity, best first, until the rest's mass is below this share


def pipe_with_confidence(nlp: Any, items: list[Any], batch_size: int = 64) -> Iterator[tuple[Any, list[float]]]:
    """Run the pipeline over texts (or Docs) and yield each doc with its entities' confidences, in order."""
    name = next((n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory in ("ner", "beam_ner")), None)
    if name is None:  # an imported pipeline may call its NER component something else: none here
        raise ValueError(f"the pipeline has no NER component (it has {', '.join(nlp.pipe_names) or 'none'})")
    beam = nlp.get_pipe_meta(name).factory == "beam_ner"
    for at in range(0, len(items), batch_size):
        docs = [nlp.make_doc(item) if isinstance(item, str) else item for item in items[at:at + batch_size]]
        confidences: list[list[float]] = []
        for component, process in nlp.pipeline:
            if component != name:
                docs = list(process.pipe(docs)) if hasattr(process, "pipe") else [process(doc) for doc in docs]
            elif beam:
                docs = list(process.pipe(docs))
                confidences = beam_confidences(process, docs)
            else:
                states, steps = greedy_parse(process, docs)
                process.set_annotations(docs, states)
                confidences = [[float(np.prod(probs[e.start:e.end])) for e in doc.ents] for doc, probs in zip(docs, steps, strict=True)]
        yield from zip(docs, [[round(c, 4) for c in cs] for cs in confidences], strict=True)


def greedy_parse(ner: Any, docs: list[Any]) -> tuple[list[Any], list[list[float]]]:
    """spaCy's greedy decoding of ``docs``, stepping the whole batch at once: the final states, and per doc the
    probability of the action chosen at each step (one per token)."""
    moves = ner.moves
    names = [moves.get_class_name(i) for i in range(moves.n_moves)]
    states = moves.init_batch(docs)
    steps: list[list[float]] = [[] for _ in docs]
    unfinished = [(i, state) for i, state in enumerate(states) if not state.is_final()]
    if not unfinished:
        return states, steps
    model = ner.model.predict(docs)
    try:
        while unfinished:
            scores = model.predict([state for _, state in unfinished]).astype(np.float64)  # float32's exp underflows early
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            for (i, state), row, order in zip(unfinished, scores.tolist(), np.argsort(-scores, axis=1).tolist(), strict=True):
                chosen, mass, rest = -1, 0.0, sum(row)
                for action in order:  # best first: the first valid one is the choice; stop once the rest is negligible
                    if chosen >= 0 and rest < NEGLIGIBLE * mass:
                        break
                    rest -= row[action]
                    if moves.is_valid(state, names[action]):
                        chosen = action if chosen < 0 else chosen
                        mass += row[action]
                moves.apply_transition(state, names[chosen])
                steps[i].append(row[chosen] / mass if mass else 1.0)  # every valid action far below an invalid one
            unfinished = [(i, state) for i, state in unfinished if not state.is_final()]
    finally:
        model.clear_memory()
    return states, steps


def beam_confidences(ner: Any, docs: list[Any], width: int = 8) -> list[list[float]]:
    """Each entity's mass among the parses of a beam search of ``width``."""
    out = []
    for doc, beam in zip(docs, ner.beam_parse(docs, beam_width=width, beam_density=0.0001), strict=True):
        mass: dict[tuple[int, int, str], float] = defaultdict(float)
        for score, parses in ner.moves.get_beam_parses(beam):
            for start, end, label in parses:
                mass[(start, end, label)] += score
        out.append([min(1.0, mass.get((e.start, e.end, e.label_), 0.0)) for e in doc.ents])
    return out
