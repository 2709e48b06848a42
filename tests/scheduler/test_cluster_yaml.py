"""`cluster.yaml` is a valid Ray autoscaler config, and every job kind fits one of its worker types."""

import json
from pathlib import Path

import pytest

from annoray.platform.resources import Resources
from annoray.platform.settings import Settings
from annoray.scheduler.cluster_config import autoscaler_node_types

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"
jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")


def test_cluster_yaml_validates_against_the_autoscaler_schema_shipped_with_ray() -> None:
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(yaml.safe_load(CLUSTER_YAML.read_text()), schema)


SPECS = {**{f"training {k}": v for k, v in Settings().training.resources.items()},
         **{f"server replica {k}": v for k, v in Settings().servers.resources.items()}}


@pytest.mark.parametrize("what", sorted(SPECS))
def test_every_job_kind_and_server_replica_fits_a_worker_type(what: str) -> None:
    demand = Resources.of(SPECS[what].model_dump())
    types = autoscaler_node_types(CLUSTER_YAML)
    assert any(demand.fits_in(t) for t in types), f"{what} needs {demand.describe()}; types: {[t.describe() for t in types]}"


def test_visual_ner_needs_the_seeds_16_cpu_64_gb() -> None:
    assert Resources.of(Settings().training.resources["visual_ner"].model_dump()) == Resources(16, 64 * 2**30)
