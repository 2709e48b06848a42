"""The worker node types of a Ray autoscaler config (`cluster.yaml`), as the scheduler plans with them."""

from __future__ import annotations

from pathlib import Path

from annoray.platform.resources import Resources


def autoscaler_node_types(path: Path) -> list[Resources]:
    """Node types the autoscaler may add (``max_workers`` > 0), with the resources they declare."""
    import yaml

    config = yaml.safe_load(path.read_text())
    return [
        Resources.of_ray(node["resources"])
        for node in config.get("available_node_types", {}).values()
        if node.get("max_workers", 0) > 0 and node.get("resources")
    ]
