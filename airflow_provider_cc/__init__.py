"""Apache Airflow provider for the Constant Contact v2 email-campaign tracking API."""

from __future__ import annotations

__version__ = "0.1.0"
