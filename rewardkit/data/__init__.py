"""The data layer: record schemas, readers and writers, converters, quality checks, built-in data."""

from rewardkit.data.io import iter_records, read_records, write_records
from rewardkit.data.kinds import KINDS
from rewardkit.data.records import normalize_record
from rewardkit.errors import DataError

__all__ = ["KINDS", "DataError", "iter_records", "normalize_record", "read_records", "write_records"]
