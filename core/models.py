"""Tenancy, access and plumbing tables: clients, API keys, grants, audit log, background jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import TenantScoped, UTCDateTime, str_enum, utcnow

__all__ = [
    "ApiKey",
    "ApiKeyGrant",
    "AuditEvent",
    "Client",
    "ClientPublic",
    "JobPublic",
    "JobRecord",
    "JobStatus",
    "Role",
]


class Role(StrEnum):
    admin = "admin"
    operator = "operator"
    sales = "sales"
    researcher = "researcher"
    client = "client"


STAFF_ROLES = frozenset({Role.admin, Role.operator, Role.sales, Role.researcher})


class ClientBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    default_region: str = Field(default="CN", min_length=2, max_length=2)


class Client(ClientBase, table=True):
    """A tenant: one of the outsourcer's customers. Everything it owns carries its id."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClientPublic(ClientBase):
    id: uuid.UUID
    slug: str
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """A credential. The secret is shown once and stored hashed (SHA-256, and argon2 for keys
    made before the SHA-256 column existed: those gain it on their first successful use)."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    prefix: str = Field(index=True, unique=True, max_length=24)
    secret_hash: str
    secret_sha256: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=200)
    role: Role = Field(sa_type=str_enum(Role))
    all_clients: bool = Field(default=False, description="admin keys that see every client")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKeyGrant(SQLModel, table=True):
    """Which clients a key may act for (one for a client key, several for staff)."""

    __table_args__ = (UniqueConstraint("api_key_id", "client_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    api_key_id: uuid.UUID = Field(foreign_key="apikey.id", index=True, ondelete="CASCADE")
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")


class AuditEvent(SQLModel, TenantScoped, table=True):
    """Who read or exported what, and when. Written for every read of lead data."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    actor_key_id: uuid.UUID | None = Field(default=None, index=True)
    actor_name: str = Field(max_length=200)
    action: str = Field(max_length=80)
    object_type: str = Field(max_length=80)
    object_id: str | None = Field(default=None, max_length=80)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    request_id: str | None = Field(default=None, max_length=80)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class JobRecord(SQLModel, TenantScoped, table=True):
    """A background job's state, progress and result, readable through the API."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=80, index=True)
    handler: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: JobStatus = Field(default=JobStatus.queued, sa_type=str_enum(JobStatus))
    progress_done: int = 0
    progress_total: int | None = None
    #: What progress counts: "rows", "leads", "seconds of dialing", ...
    progress_unit: str | None = Field(default=None, max_length=40)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: str | None = None
    worker: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class JobPublic(SQLModel):
    id: uuid.UUID
    kind: str
    params: dict[str, Any]
    status: JobStatus
    progress_done: int
    progress_total: int | None
    progress_unit: str | None = None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
