"""What the cluster holds for annoray in Ray's own view: the placement groups of Ray Train runs, and the ones a
crash left behind.

A Ray Train run's placement group is created by its Train controller and, not being detached, lives until both
that controller and the Ray job that created it are gone. The job is the long-lived driver (``annoray up``), so a
controller that dies without shutting its worker group down (its owner killed, its process crashed) leaves the
group holding CPUs no worker uses. Ray Train's own cleaner for this needs the state API (the dashboard); here the
scheduler finds such groups itself: not detached, created by an actor, and that actor dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from annoray.platform.resources import Resources


@dataclass(frozen=True)
class OrphanedReservation:
    """A placement group whose creating actor died: nothing will ever use or remove it."""

    placement_group_id: str
    resources: dict[str, float]  # summed over its bundles, in Ray's units (memory in bytes)
    node_ids: tuple[str, ...]

    def describe(self) -> str:
        return f"placement group {self.placement_group_id} ({Resources.of_ray(self.resources).describe()})"


def _placement_groups() -> list[Any]:
    """Every placement group the GCS knows, as its table rows (creator and liveness included).

    ``ray.util.placement_group_table()`` drops the creator fields and ``ray.util.state`` needs the dashboard,
    so the rows are read from the GCS accessor that both are built on.
    """
    import ray._private.state
    from ray.core.generated import gcs_pb2

    accessor = ray._private.state.state._connect_and_get_accessor()
    return [gcs_pb2.PlacementGroupTableData.FromString(row) for row in accessor.get_placement_group_table()]


def orphaned_reservations() -> list[OrphanedReservation]:
    """Placement groups left behind by a dead actor (a Train controller that died before removing its group)."""
    from ray.core.generated import gcs_pb2

    orphans = []
    for row in _placement_groups():
        if row.state == gcs_pb2.PlacementGroupTableData.REMOVED or row.is_detached:
            continue
        created_by_an_actor = bool(row.creator_actor_id.strip(b"\xff"))  # a nil id (a driver or a task) is all 0xff
        if not (created_by_an_actor and row.creator_actor_dead):
            continue
        resources: dict[str, float] = {}
        for bundle in row.bundles:
            for name, amount in bundle.unit_resources.items():
                resources[name] = resources.get(name, 0.0) + amount
        nodes = tuple(sorted({bundle.node_id.hex() for bundle in row.bundles if bundle.node_id.strip(b"\xff")}))
        orphans.append(OrphanedReservation(row.placement_group_id.hex(), resources, nodes))
    return orphans


def remove_orphaned_reservations() -> list[OrphanedReservation]:
    """Give every orphaned placement group back to Ray; returns what was removed."""
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    removed = []
    for orphan in orphaned_reservations():
        try:
            remove_placement_group(PlacementGroup(_placement_group_id(orphan.placement_group_id)))
        except Exception:  # removed meanwhile by Ray itself
            continue
        removed.append(orphan)
    return removed


def _placement_group_id(hex_id: str) -> Any:
    from ray import PlacementGroupID

    return PlacementGroupID(bytes.fromhex(hex_id))
