"""Periodic work for `rq cron connector.cron` (run beside `coi worker`).

Every night shortly after midnight UTC all vendors are re-evaluated as of the new day.
"""

from rq import cron

from connector.config import Settings
from connector.jobs import recompute_all_job

cron.register(recompute_all_job, queue_name=Settings.from_env().queue_name, cron="15 0 * * *")
