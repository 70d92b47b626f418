"""Reading a `/metrics` answer: one sample's value, by name and labels."""

from prometheus_client.parser import text_string_to_metric_families


def value(exposition: str, name: str, **labels) -> float:
    """The sample `name` with exactly these labels; 0 when absent (a counter not yet counted)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0
