import pytest
from pydantic import ValidationError

from annoray.platform.models.training import TrainingParams


@pytest.mark.parametrize("field,value", [
    ("epochs", 0), ("epochs", 10_000), ("learning_rate", 0), ("learning_rate", 2), ("dropout", 1.0),
    ("batch_size", 0), ("validation_split", 1.0), ("decay", -1), ("momentum", 0.9),
])
def test_out_of_range_parameters_are_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        TrainingParams(**{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_inverse_time_decay() -> None:
    params = TrainingParams(learning_rate=0.01, decay=0.5)
    assert [round(params.learning_rate_at(e), 5) for e in range(3)] == [0.01, 0.00667, 0.005]
