"""What a service call needs besides its arguments: the session, who acts, the day, the jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy.orm import Session

from connector.jobs import Jobs


class Context:
    """`session` may be given as the function that opens it: it is then opened on first use, so
    a web request answered from the worker's snapshots (most gate calls) opens none. Used as a
    context manager, the context closes the session it opened (if it opened one)."""

    __slots__ = ("_opened", "_session", "actor", "jobs", "today")

    def __init__(
        self, session: Session | Callable[[], Session], jobs: Jobs, actor: str, today: date
    ) -> None:
        self._session = session
        self._opened = False
        self.jobs = jobs
        self.actor = actor
        self.today = today

    @property
    def session(self) -> Session:
        if not isinstance(self._session, Session):
            self._session = self._session()
            self._opened = True
        return self._session

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._opened:
            self._session.close()
