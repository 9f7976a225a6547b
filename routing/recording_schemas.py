"""What the recordings API reads and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RecordingRead(BaseModel):
    number: int = Field(description="the recording's number in its call: GET …/recordings/{number}")
    file: str = Field(description="relative to the recordings directory: yyyy/mm/dd/<call>-<n>.wav")
    started_at: datetime
    policy: str = Field(description="always, on_demand (an agent asked) or never")
    requested_by: str = Field(description="`policy`, or the key that asked for it")
    source: str = Field(description="mixmonitor (FastAGI, AMI) or ari_bridge (campaign calls)")
    queue: str | None = None
    campaign: str | None = None
    deleted_at: datetime | None = Field(default=None, description="when retention deleted the file")
    touchpoint_id: int


class RecordingList(BaseModel):
    items: list[RecordingRead]


class PurgeReport(BaseModel):
    """What one run of the retention job did (or, dry, would do)."""

    dry_run: bool
    retention_days: int
    cutoff: datetime | None = Field(description="recordings started before this expired; null: kept")
    expired: int = Field(description="recordings past retention, not deleted before")
    deleted: int = Field(description="files deleted")
    missing: int = Field(description="expired recordings whose file was not there any more")
    refused: int = Field(description="touchpoints whose file name is not a recording name: left alone")
    failed: int = Field(description="files that could not be deleted (kept, tried again next run)")
