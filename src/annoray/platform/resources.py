"""Cluster resources, in one type and one unit convention for settings, placement, the ledger, Ray Train and Serve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GB = 2**30


@dataclass(frozen=True)
class Resources:
    """An amount of cluster resources in one unit convention: CPUs, memory in bytes, GPUs. Settings and the API speak
    GB (`of`, `as_dict`), Ray its own names (`to_ray`, `of_ray`, `actor_options`); placement adds and compares them."""

    cpus: float = 0.0
    memory: float = 0.0  # bytes
    gpus: float = 0.0

    @classmethod
    def of(cls, spec: Mapping[str, float]) -> Resources:
        """From a resource spec as settings hold it (``cpus``, ``memory_gb``, ``gpus``)."""
        return cls(float(spec.get("cpus", 0)), float(spec.get("memory_gb", 0)) * GB, float(spec.get("gpus", 0)))

    def to_ray(self) -> dict[str, float]:
        """As Ray names resources (``CPU``, ``memory`` in bytes, ``GPU``), leaving out what is zero."""
        return {k: v for k, v in {"CPU": self.cpus, "memory": self.memory, "GPU": self.gpus}.items() if v}

    def actor_options(self) -> dict[str, float]:
        """As Ray's actor options name them (``num_cpus``, ``memory`` in bytes, ``num_gpus``)."""
        return {"num_cpus": self.cpus, "memory": int(self.memory), "num_gpus": self.gpus}

    @classmethod
    def of_ray(cls, resources: Mapping[str, float]) -> Resources:
        """From Ray's resource dict (``CPU``, ``memory`` in bytes, ``GPU``)."""
        return cls(float(resources.get("CPU", 0)), float(resources.get("memory", 0)), float(resources.get("GPU", 0)))

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.memory + other.memory, self.gpus + other.gpus)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpus - other.cpus, self.memory - other.memory, self.gpus - other.gpus)

    def __mul__(self, times: int) -> Resources:
        return Resources(self.cpus * times, self.memory * times, self.gpus * times)

    def fits_in(self, other: Resources) -> bool:
        eps = 1e-9
        return self.cpus <= other.cpus + eps and self.memory <= other.memory + eps and self.gpus <= other.gpus + eps

    def describe(self) -> str:
        text = f"{self.cpus:g} CPU / {self.memory / GB:g} GB"
        return text + (f" / {self.gpus:g} GPU" if self.gpus else "")

    def as_dict(self) -> dict[str, float]:
        return {"cpus": self.cpus, "memory_gb": round(self.memory / GB, 3), "gpus": self.gpus}
