"""In-memory stand-ins for the adapters, for tests of the logic layer."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from novacron.alert.incidents import Incident, IncidentConflict
from novacron.alert.rule_state import GroupState
from novacron.alert.silences import Silence
from novacron.alert.state import StoredText
from novacron.auth import KeyRecord
from novacron.ingest.policy import IngestPolicy
from novacron.ingest.service import StreamUnavailable
from novacron.protocols.remote_write_pb import TimeSeries
from novacron.protocols.wire import decode_series
from novacron.records import StreamRecord, decode_record
from novacron.storage.writer import BlockItem, SeriesEntry, StoredItem


class ListSink:
    """A StreamSink keeping records in a list; can be told to fail."""

    def __init__(self, fail_with: StreamUnavailable | None = None) -> None:
        self.records: list[StreamRecord] = []
        self.fail_with = fail_with

    def put(self, records: Sequence[StreamRecord]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.records.extend(records)

    def stored_samples(self) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Everything received, decoded back to series → samples."""
        out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        for record in self.records:
            decoded = decode_series(decode_record(record.data).contents)
            for i, content in enumerate(decoded.contents):
                labels = tuple((lb.name, lb.value) for lb in TimeSeries.FromString(content).labels)
                a, b = decoded.offsets[i], decoded.offsets[i + 1]
                out.setdefault(labels, []).extend(
                    zip(decoded.timestamps[a:b].tolist(), decoded.values[a:b].tolist(), strict=True)
                )
        return out


class MemoryBlockStore:
    """A BlockStore over a dict keyed like the table (``items``), with the sort keys of each partition."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], BlockItem] = {}
        self.partitions: dict[str, set[str]] = {}
        self.puts = 0

    def put_blocks(self, items: Sequence[BlockItem]) -> None:
        for item in items:
            self.puts += 1
            self.items[(item.pk, item.sk)] = item
            self.partitions.setdefault(item.pk, set()).add(item.sk)

    def _range(self, pk: str, sk_low: str, sk_high: str) -> list[BlockItem]:
        # Tests may remove entries of ``items`` directly: those are gone from the partition too.
        sks = sorted(sk for sk in self.partitions.get(pk, ()) if sk_low <= sk <= sk_high and (pk, sk) in self.items)
        return [self.items[(pk, sk)] for sk in sks]

    def query_blocks(self, pk: str, sk_low: str, sk_high: str) -> Iterable[bytes]:
        return [item.data for item in self._range(pk, sk_low, sk_high)]

    def get_items(self, pk: str, sks: Sequence[str]) -> dict[str, bytes]:
        return {sk: self.items[(pk, sk)].data for sk in sks if (pk, sk) in self.items}

    def query_items(
        self, pk: str, sk_low: str, sk_high: str, limit: int | None = None, consistent: bool = False
    ) -> Iterable[StoredItem]:
        return [StoredItem(item.sk, item.data, item.max_ts) for item in self._range(pk, sk_low, sk_high)][:limit]

    def delete_items(self, pk: str, sks: Sequence[str]) -> None:
        for sk in sks:
            if self.items.pop((pk, sk), None) is not None:
                self.partitions[pk].discard(sk)


class MemoryIndexStore:
    """An IndexStore over a dict."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str, str], SeriesEntry] = {}
        self.puts = 0
        self.summary: dict[tuple[str, str], dict[str, int]] = {}  # the cardinality summary
        self.counted = 0  # count_series calls
        self.existence_checks = 0  # existing_series calls

    def put_series(self, entries: Sequence[SeriesEntry], expires_at: int) -> None:
        for entry in entries:
            self.puts += 1
            self.series[(entry.tenant, entry.day, entry.metric, entry.series_id)] = entry

    def series_of_metric(self, tenant: str, day: str, metric: str) -> list[SeriesEntry]:
        return [e for (t, d, m, _), e in sorted(self.series.items()) if (t, d, m) == (tenant, day, metric)]

    def label_pairs(self, tenant: str, day: str, name: str | None = None) -> list[tuple[str, str]]:
        pairs = {pair for (t, d, _, _), e in self.series.items() if (t, d) == (tenant, day) for pair in e.labels}
        return sorted(p for p in pairs if name is None or p[0] == name)

    # The cardinality summary (CardinalityStore for the writer, CardinalityReader for ingest).

    def count_series(self, tenant: str, day: str, metric: str) -> int:
        self.counted += 1
        return len(self.series_of_metric(tenant, day, metric))

    def put_cardinality(self, tenant: str, day: str, counts: Mapping[str, int], expires_at: int) -> None:
        day_counts = self.summary.setdefault((tenant, day), {})
        for metric, count in counts.items():
            day_counts[metric] = max(count, day_counts.get(metric, 0))

    def cardinality(self, tenant: str, day: str) -> dict[str, int]:
        return dict(self.summary.get((tenant, day), {}))

    def existing_series(self, tenant: str, day: str, metric: str, series_ids: Sequence[str]) -> set[str]:
        self.existence_checks += 1
        return {sid for sid in series_ids if (tenant, day, metric, sid) in self.series}


class MemoryArchive:
    """An ArchiveStore over a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.tags: dict[str, Mapping[str, str]] = {}

    def put(self, key: str, data: bytes, tags: Mapping[str, str] | None = None) -> None:
        self.objects[key] = data
        self.tags[key] = dict(tags or {})


class MemoryKeyStore:
    """A KeyStore over a dict."""

    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}

    def get(self, key_id: str) -> KeyRecord | None:
        return self.records.get(key_id)

    def put(self, record: KeyRecord) -> None:
        self.records[record.key_id] = record

    def revoke(self, key_id: str, tenant: str, at: int) -> bool:
        record = self.records.get(key_id)
        if record is None or record.tenant != tenant:
            return False
        self.records[key_id] = replace(record, revoked_at=at)
        return True

    def list(self, tenant: str) -> list[KeyRecord]:
        return [r for r in self.records.values() if r.tenant == tenant]


class MemoryPolicyStore:
    """A PolicySource and policy store over a dict (the settings table's policy methods)."""

    def __init__(self) -> None:
        self.policies: dict[str, IngestPolicy] = {}

    def policy(self, tenant: str) -> IngestPolicy:
        return self.policies.get(tenant) or IngestPolicy()

    def put_policy(self, tenant: str, policy: IngestPolicy, expected_version: int) -> bool:
        if self.policy(tenant).version != expected_version:
            return False
        self.policies[tenant] = policy
        return True


class MemoryIncidentStore:
    """An IncidentStore over a dict, with the table's optimistic locking."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Incident] = {}

    def incident(self, tenant: str, incident_id: str) -> Incident | None:
        found = self.items.get((tenant, incident_id))
        return None if found is None else Incident.from_json(found.to_json())  # a copy, as a read is

    def list_incidents(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = True
    ) -> list[Incident]:
        found = sorted((i for (t, _), i in self.items.items() if t == tenant), key=lambda i: i.id)
        kept = [i for i in found if start_ms <= i.opened_at_ms <= end_ms]
        return [Incident.from_json(i.to_json()) for i in (kept[::-1] if newest_first else kept)[:limit]]

    def active_incidents(self, tenant: str, since_ms: int, resolved_since_ms: int) -> list[Incident]:
        found = self.list_incidents(tenant, since_ms, 9_999_999_999_999, limit=10_000, newest_first=False)
        return [i for i in found if i.status != "resolved" or (i.resolved_at_ms or 0) >= resolved_since_ms]

    def save(self, incident: Incident, expires_at: int) -> Incident:
        stored = self.items.get((incident.tenant, incident.id))
        if (stored.revision if stored else 0) != incident.revision:
            raise IncidentConflict(f"incident {incident.id} changed since revision {incident.revision}")
        saved = replace(incident, revision=incident.revision + 1)
        self.items[(incident.tenant, incident.id)] = saved
        return Incident.from_json(saved.to_json())


class MemoryModelStore:
    """A ModelStore (novacron.detect.registry) over a dict, with S3's conditional writes (ETags)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self._writes = 0

    def read(self, key: str) -> tuple[bytes, str] | None:
        return self.objects.get(key)

    def write(self, key: str, data: bytes, *, etag: str | None = None, create_only: bool = False) -> str | None:
        stored = self.objects.get(key)
        if etag is not None and (stored is None or stored[1] != etag):
            return None
        if etag is None and create_only and stored is not None:
            return None
        self._writes += 1
        self.objects[key] = (data, f'"etag-{self._writes}"')
        return self.objects[key][1]

    def list_prefixes(self, prefix: str) -> list[str]:
        return sorted({key[len(prefix) :].split("/", 1)[0] for key in self.objects if key.startswith(prefix)})


class MemoryAlertingStore:
    """An AlertingStore (novacron.alert.state) over dicts, with the table's conditional writes on versions."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, StoredText]] = {}
        self.states: dict[str, dict[str, GroupState]] = {}
        self.configs: dict[str, StoredText] = {}
        self.correlations: dict[str, StoredText] = {}
        self.silence_items: dict[str, dict[str, Silence]] = {}
        self.dispatchers: dict[str, dict[str, Any]] = {}

    def tenants(self) -> list[str]:
        return sorted({t for t, files in self.files.items() if files} | set(self.configs))

    def rule_files(self, tenant: str) -> dict[str, StoredText]:
        return dict(self.files.get(tenant, {}))

    def put_rule_file(self, tenant: str, name: str, text: str, by: str, at: int, expected_version: int) -> bool:
        files = self.files.setdefault(tenant, {})
        stored = files.get(name)
        if (stored.version if stored else 0) != expected_version:
            return False
        files[name] = StoredText(text, expected_version + 1, at, by)
        return True

    def delete_rule_file(self, tenant: str, name: str) -> bool:
        if self.files.get(tenant, {}).pop(name, None) is None:
            return False
        states = self.states.get(tenant, {})
        for key in [k for k in states if k.startswith(f"{name}/")]:
            del states[key]
        return True

    def group_states(self, tenant: str) -> dict[str, GroupState]:
        return copy.deepcopy(self.states.get(tenant, {}))

    def put_group_states(self, tenant: str, states: Mapping[str, GroupState]) -> None:
        self.states.setdefault(tenant, {}).update(copy.deepcopy(dict(states)))

    def alertmanager_config(self, tenant: str) -> StoredText | None:
        return self.configs.get(tenant)

    def put_alertmanager_config(self, tenant: str, text: str, by: str, at: int, expected_version: int) -> bool:
        stored = self.configs.get(tenant)
        if (stored.version if stored else 0) != expected_version:
            return False
        self.configs[tenant] = StoredText(text, expected_version + 1, at, by)
        return True

    def correlation_config(self, tenant: str) -> StoredText | None:
        return self.correlations.get(tenant)

    def put_correlation_config(self, tenant: str, text: str, by: str, at: int, expected_version: int) -> bool:
        stored = self.correlations.get(tenant)
        if (stored.version if stored else 0) != expected_version:
            return False
        self.correlations[tenant] = StoredText(text, expected_version + 1, at, by)
        return True

    def silences(self, tenant: str) -> list[Silence]:
        return list(self.silence_items.get(tenant, {}).values())

    def put_silence(self, tenant: str, silence: Silence) -> None:
        self.silence_items.setdefault(tenant, {})[silence.id] = silence

    def dispatcher_state(self, tenant: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.dispatchers.get(tenant))

    def put_dispatcher_state(self, tenant: str, state: Mapping[str, Any]) -> None:
        self.dispatchers[tenant] = copy.deepcopy(dict(state))
