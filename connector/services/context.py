"""What a service call needs besides its arguments: the session, who acts, the day, the jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy.orm import Session

from connector.jobs import Jobs


class Context:
    """`session` may be given as the function that opens it: it is then opened on first use, so
    a web request answered from the worker's snapshots (most gate calls) opens none."""

    __slots__ = ("_session", "actor", "jobs", "today")

    def __init__(
        self, session: Session | Callable[[], Session], jobs: Jobs, actor: str, today: date
    ) -> None:
        self._session = session
        self.jobs = jobs
        self.actor = actor
        self.today = today

    @property
    def session(self) -> Session:
        if not isinstance(self._session, Session):
            self._session = self._session()
        return self._session
