"""The pre-annotation server: one Ray Serve application per server, its models loaded in each replica.

A request is a list of texts; ``@serve.batch`` gathers concurrent requests into one pass of every
model. A text a model cannot take (e.g. longer than spaCy's ``max_length``) answers ``{"error": ...}``
for itself alone. A fixed set of at most five models is loaded in the replica's constructor (predictable
memory); the scheduler creates and deletes the application (``scheduler.factory.server_app`` makes the class a
Serve deployment) and holds its resources and seats.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray import serve

from annoray.platform.errors import describe
from annoray.serve_apps.predictor import Predictor, ServedModel, ServedRule
from annoray.trainers.store import ModelStore

DEPLOYMENT = "preannotation"


def app_name(server_id: int) -> str:
    return f"annoray-server-{server_id}"


def server_of_app(name: str) -> int | None:
    """The server id of a Serve app annoray named (None for another app)."""
    prefix, _, server_id = name.rpartition("-")
    return int(server_id) if prefix == "annoray-server" and server_id.isdigit() else None


class PreannotationReplica:
    """One replica of a pre-annotation server: its models loaded, its requests batched."""

    def __init__(self, store: str, models: list[dict[str, Any]], rules: list[dict[str, Any]], language: str,
                 max_batch_size: int, max_models: int):
        self.workdir = tempfile.TemporaryDirectory(prefix="annoray-server-")
        local = ModelStore(store)
        served = []
        for model in models:
            path = local.get(model["name"], Path(self.workdir.name) / model["name"])
            served.append(ServedModel(model["name"], model["kind"], str(path), tuple(model.get("labels", ())),
                                      model.get("engine"), tuple(model.get("jars", ()))))
        self.predictor = Predictor(served, [ServedRule(**{**r, "terms": tuple(r.get("terms") or ())}) for r in rules],
                                   language=language, max_models=max_models)
        self.batch.set_max_batch_size(max_batch_size)
        self.replica = serve.get_replica_context().replica_id.unique_id  # each answer says which replica gave it

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def batch(self, requests: list[list[str]]) -> list[list[dict[str, Any]]]:
        flat = [text for texts in requests for text in texts]
        try:
            outputs = [p.as_dict() for p in self.predictor.predict(flat)]
        except Exception:  # one bad text must not fail the others batched with it: find it, say why
            outputs = [self._one(text) for text in flat]
        answers, at = [], 0
        for texts in requests:
            answers.append(outputs[at:at + len(texts)])
            at += len(texts)
        return answers

    def _one(self, text: str) -> dict[str, Any]:
        try:
            return self.predictor.predict([text])[0].as_dict()
        except Exception as exc:
            return {"error": describe(exc)}

    async def __call__(self, texts: list[str]) -> list[dict[str, Any]]:
        return [output | {"replica": self.replica} for output in await self.batch(texts)]

    def models(self) -> list[dict[str, Any]]:
        return [asdict(m) for m, _ in self.predictor.models]
