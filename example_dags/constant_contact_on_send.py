"""Event-driven (Airflow 3): run as soon as a campaign of the account is sent, with no sensor task.

An ``AssetWatcher`` on the triggerer polls the account's sent campaigns every 10 minutes (one request a poll:
144 of the key's 10,000 a day) and records an event on the asset for each send; the DAG, scheduled on the
asset, pulls every tracking report of each campaign sent: one task per campaign (the account operator with
``campaign_ids``), from its send time on. Each costs one campaign request, then the pages of the reports that
have activity; a report with none costs no request and writes no file. On Airflow 2 this file defines no DAG:
there, wait for a campaign with ``ConstantContactCampaignSentSensor`` (``constant_contact_wait_for_send``).
"""

from __future__ import annotations

from typing import Any

import pendulum

from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, AssetWatcher, task
except ImportError:  # Airflow 2: no event-driven scheduling
    AssetWatcher = None

if AssetWatcher is not None:
    from airflow_provider_cc.triggers.sent import ConstantContactCampaignSentEventTrigger

    CAMPAIGN_SENT = Asset(
        "constant_contact_campaign_sent",
        watchers=[AssetWatcher(
            name="constant_contact_campaign_sent",
            trigger=ConstantContactCampaignSentEventTrigger(constant_contact_conn_id="constant_contact_default",
                                                            poll_interval=600),
        )],
    )

    with DAG(
        dag_id="constant_contact_on_send",
        schedule=[CAMPAIGN_SENT],
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        # No max_active_runs=1: Airflow 3 leaves events that arrive while a run is at the cap to the asset's next
        # event (apache/airflow#56050); the pool bounds the requests instead.
        tags=["constant-contact", "example"],
        doc_md=__doc__,
    ) as dag:

        @task
        def campaigns_sent(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
            """Each campaign the run's events announce (several sends may share one run), from its send time
            on."""
            sent = {}
            for event in triggering_asset_events[CAMPAIGN_SENT]:
                payload = event.extra["payload"]  # {campaign_id, name, sent, api, constant_contact_conn_id}
                sent[payload["campaign_id"]] = min(payload["sent"], sent.get(payload["campaign_id"], payload["sent"]))
            return [{"campaign_ids": [cid], "created_since": since} for cid, since in sorted(sent.items())]

        ConstantContactAccountTrackingOperator.partial(
            task_id="pull",
            destination="{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}",
            storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
            pool="constant_contact",
        ).expand_kwargs(campaigns_sent())
