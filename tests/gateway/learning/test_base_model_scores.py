"""make train's metrics file belongs to exactly the archive it scored."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.learning.base_model_scores import metrics_path, scores_for
from gateway.learning.model_registry import file_sha256


def test_scores_are_read_only_for_the_archive_they_were_written_for(tmp_path: Path) -> None:
    archive = tmp_path / "northwind.tar.gz"
    archive.write_bytes(b"model one")
    assert metrics_path(archive) == tmp_path / "northwind.metrics.json"
    assert scores_for(archive) is None  # never scored
    metrics_path(archive).write_text(json.dumps({"intent_accuracy": 0.9, "archive_sha256": file_sha256(archive)}))
    assert scores_for(archive) == {"intent_accuracy": 0.9}
    assert scores_for(archive, file_sha256(archive)) == {"intent_accuracy": 0.9}  # the registry's hash, reused
    assert scores_for(archive, "0" * 64) is None
    archive.write_bytes(b"model two")  # retrained since: the old scores are not this model's
    assert scores_for(archive) is None
    metrics_path(archive).write_text("{not json")
    assert scores_for(archive) is None
