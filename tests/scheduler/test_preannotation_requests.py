"""A pre-annotation job takes its server's answers as they come, not in the order it sent the requests."""

import threading

from annoray.scheduler.preannotation import Requests


class Response:
    """A Serve response that answers once its gate opens (or fails)."""

    def __init__(self, inputs: list[str], gate: threading.Event, fail: bool = False):
        self.inputs, self.gate, self.fail = inputs, gate, fail

    def result(self, timeout_s: float) -> list[dict]:
        assert self.gate.wait(timeout_s)
        if self.fail:
            raise RuntimeError("the replica died")
        return [{"text": text} for text in self.inputs]


class Handle:
    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.failing: set[str] = set()
        self.sent: list[list[str]] = []

    def remote(self, inputs: list[str]) -> Response:
        self.sent.append(inputs)
        gate = self.gates.setdefault(inputs[0], threading.Event())
        fail = inputs[0] in self.failing
        self.failing.discard(inputs[0])
        return Response(inputs, gate, fail)


def test_answers_are_taken_as_they_come_and_a_failed_request_is_sent_again() -> None:
    handle, taken, failed = Handle(), [], []
    requests = Requests(handle, 8, lambda tasks, outputs: taken.append((tasks, [o["text"] for o in outputs])),
                        lambda task, exc: failed.append(task))
    handle.gates["slow"] = threading.Event()
    handle.gates["fast"] = threading.Event()
    handle.gates["fast"].set()
    handle.failing.add("flaky")
    handle.gates["flaky"] = threading.Event()
    handle.gates["flaky"].set()
    requests.send([1], ["slow"])
    requests.send([2], ["fast"])
    requests.send([3], ["flaky"])
    while not taken:
        requests.settle_first()
    assert [tasks for tasks, _ in taken] == [[2]], "the second request's answer came first and was taken first"
    handle.gates["slow"].set()
    requests.drain()
    requests.close()
    assert sorted(tasks[0] for tasks, _ in taken) == [1, 2, 3] and failed == []
    assert handle.sent.count(["flaky"]) == 2, "the failed request was sent again"
