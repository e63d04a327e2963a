"""db_pool: named, pooled database connections whose queries return Polars
DataFrames, on a C11 core.

>>> from db_pool import DatabasePool
>>> pool = DatabasePool()
>>> await pool.create_pool("local", url="sqlite:///:memory:")
>>> df = await pool.query("local", "SELECT 1 AS one")
"""

from __future__ import annotations

from . import errors
from ._async import DatabasePool, Transaction
from ._config_model import Config, ConfigDiff, EndpointConfig, PoolConfig, PoolDiff, diff
from ._config_sources import (
    ConfigWarning,
    config_from_env,
    config_from_keywords,
    config_from_url,
    load_config,
)
from ._native import engines
from ._reload import PoolChange, ReloadReport
from ._sync import SyncDatabasePool, SyncTransaction
from .errors import (
    AuthenticationError,
    ConfigProblem,
    ConfigurationError,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    NoEndpointAvailable,
    OperationalError,
    OutcomeUnknown,
    PoolClosed,
    PoolError,
    PoolExists,
    PoolFull,
    PoolNotFound,
    PoolTimeout,
    ProgrammingError,
    QueryCancelled,
    QueryTimeout,
    TimeoutOutcomeUnknown,
    Warning,
)

__version__ = "0.1.0"

__all__ = [
    "DatabasePool",
    "SyncDatabasePool",
    "Transaction",
    "SyncTransaction",
    "engines",
    "errors",
    "Config",
    "ConfigDiff",
    "ConfigProblem",
    "ConfigWarning",
    "EndpointConfig",
    "PoolConfig",
    "PoolDiff",
    "PoolChange",
    "ReloadReport",
    "config_from_env",
    "config_from_keywords",
    "config_from_url",
    "diff",
    "load_config",
    "AuthenticationError",
    "ConfigurationError",
    "DatabaseError",
    "DataError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "NoEndpointAvailable",
    "OperationalError",
    "OutcomeUnknown",
    "PoolClosed",
    "PoolError",
    "PoolExists",
    "PoolFull",
    "PoolNotFound",
    "PoolTimeout",
    "ProgrammingError",
    "QueryCancelled",
    "QueryTimeout",
    "TimeoutOutcomeUnknown",
    "Warning",
]
