"""What the metrics tests share: reading one sample out of a snapshot and
parsing prometheus_text() with the real Prometheus parser."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def value(snap: dict[str, list[dict[str, Any]]], name: str, **labels: str) -> Any:
    """The one sample of `name` whose labels include `labels`."""
    hits = [s for s in snap[name] if all(s["labels"].get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (name, labels, snap[name])
    sample = hits[0]
    return sample if "buckets" in sample else sample["value"]


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, key
            out[key] = s.value
    return out


def check_round_trip(snap: dict[str, list[dict[str, Any]]], text: str) -> None:
    """Every sample of the snapshot is in the text with the same labels and value."""
    samples = parsed(text)
    n = 0
    for name, series in snap.items():
        for s in series:
            labels = s["labels"]
            if "buckets" not in s:
                assert samples[(name, tuple(sorted(labels.items())))] == s["value"], name
                n += 1
                continue
            for le, count in s["buckets"]:
                le_text = "+Inf" if le == float("inf") else repr(float(le))
                key = (name + "_bucket", tuple(sorted({**labels, "le": le_text}.items())))
                assert samples[key] == count, key
            assert samples[(name + "_count", tuple(sorted(labels.items())))] == s["count"]
            assert abs(samples[(name + "_sum", tuple(sorted(labels.items())))] - s["sum"]) < 1e-9
            n += len(s["buckets"]) + 2
    assert n == len(samples)


#: An OpenTelemetry data point: (metric name, sorted attributes).
OtelKey = tuple[str, tuple[tuple[str, str], ...]]


def otel_points(reader: Any) -> dict[OtelKey, Any]:
    """Every data point an opentelemetry-sdk InMemoryMetricReader collects now."""
    out: dict[OtelKey, Any] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    key = (metric.name, tuple(sorted((k, str(v)) for k, v in p.attributes.items())))
                    assert key not in out, key
                    out[key] = p.value
    return out


def check_otel_matches(points: dict[OtelKey, Any], snap: dict[str, list[dict[str, Any]]]) -> None:
    """The collected points are exactly the snapshot's samples under their
    OpenTelemetry names (histograms as <name>.count and <name>.sum)."""
    from db_pool.otel import OTEL_METRICS, attributes

    want: dict[OtelKey, Any] = {}
    for name, series in snap.items():
        m = OTEL_METRICS[name]
        for s in series:
            attrs = tuple(sorted(attributes(s["labels"]).items()))
            if "buckets" in s:
                want[(m.name + ".count", attrs)] = s["count"]
                want[(m.name + ".sum", attrs)] = s["sum"]
            else:
                want[(m.name, attrs)] = s["value"]
    assert points.keys() == want.keys(), set(points) ^ set(want)
    for key, v in want.items():
        assert points[key] == v, (key, points[key], v)
