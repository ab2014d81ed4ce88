"""Periodic work for `rq cron connector.cron` (run beside `coi worker`).

Every night shortly after midnight UTC all vendors are re-evaluated as of the new day; every
minute, connections whose schedule is due are synced and due outbox entries pushed. Outbound
webhook deliveries whose retry has come are sent every minute, and newly expiring policies are
announced (`policy.expiring`) once a day after the re-evaluation; webhook receipts and finished
deliveries past their keeping time are dropped once a day.
"""

from rq import cron

from connector.config import Settings
from connector.jobs import (
    deliver_webhooks_job,
    policy_expiring_job,
    prune_webhooks_job,
    recompute_all_job,
    scheduled_syncs_job,
)

QUEUE = Settings.from_env().queue_name

cron.register(recompute_all_job, queue_name=QUEUE, cron="15 0 * * *")
cron.register(scheduled_syncs_job, queue_name=QUEUE, interval=60)
cron.register(deliver_webhooks_job, queue_name=QUEUE, interval=60)
cron.register(policy_expiring_job, queue_name=QUEUE, cron="45 0 * * *")
cron.register(prune_webhooks_job, queue_name=QUEUE, cron="30 1 * * *")
