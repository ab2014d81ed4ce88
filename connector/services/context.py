"""What a service call needs besides its arguments: the session, who acts, the day, the jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from connector.jobs import Jobs


@dataclass
class Context:
    session: Session
    jobs: Jobs
    actor: str
    today: date
