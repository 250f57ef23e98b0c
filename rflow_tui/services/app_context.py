"""What the app needs to reach the domain: settings, the store, the user, a generator, a judge.

Kept free of Textual so the app, the CLI and tests share one way of running a
service call in its own store session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from rflow_tui.config import Settings
from rflow_tui.models import User

if TYPE_CHECKING:
    from rflow_tui.ai.base import NodeGenerator
    from rflow_tui.ai.judge import NodeJudge

T = TypeVar("T")


@dataclass
class AppContext:
    settings: Settings
    engine: Any
    open_db: Callable[[], Any]
    user: User
    on_rights_changed: Callable[[Any], None] | None = field(default=None, repr=False)
    _generator: NodeGenerator | None = field(default=None, repr=False)
    _generator_error: str | None = field(default=None, repr=False)
    _judge: NodeJudge | None = field(default=None, repr=False)
    _judge_error: str | None = field(default=None, repr=False)
    _in_flight: set[asyncio.Future[Any]] = field(default_factory=set, repr=False)

    async def call(self, fn: Callable[..., Awaitable[T]], /, **kwargs: Any) -> T:
        """Run one service operation as the logged-in user, in a fresh store session.

        A failure of the store itself comes out as a DatabaseError (a ServiceError), so
        the screen that asked shows it like any refusal and keeps what was typed. When
        the user's rights changed since sign-in (RightsChanged), ``user`` takes the fresh
        rights and ``on_rights_changed`` hears of it before the error goes on to the
        caller, so the app can move to a screen the user may still use.

        An operation once started finishes even if the screen that asked goes away:
        cancelled half-way, its connection would never go back to the pool cleanly.
        """
        task = asyncio.ensure_future(self._call(fn, kwargs))
        self._in_flight.add(task)
        task.add_done_callback(self._settled)
        return await asyncio.shield(task)

    def _settled(self, task: asyncio.Future[Any]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled():
            task.exception()  # seen here: whoever asked may be gone, and then nobody else reads it

    async def settle(self, timeout: float = 3.0) -> None:
        """Wait (a little) for operations already started, before the store closes."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    async def _call(self, fn: Callable[..., Awaitable[T]], kwargs: dict[str, Any]) -> T:
        from rflow_tui.db import store_errors
        from rflow_tui.services.errors import RightsChanged

        try:
            async with store_errors(), self.open_db() as db:
                return await fn(db, actor=self.user, **kwargs)
        except RightsChanged as exc:
            self.user = exc.user
            if self.on_rights_changed is not None:
                self.on_rights_changed(exc)
            raise

    def generator(self) -> NodeGenerator | None:
        """The configured node generator, built once; None (see ``generator_error``) if unavailable."""
        if self._generator is None and self._generator_error is None:
            from rflow_tui.ai.errors import GenerationError
            from rflow_tui.ai.registry import make_generator

            try:
                from rflow_tui.ai.privacy import with_privacy

                generator = make_generator(self.settings.llm.generator, self.settings.llm)
                self._generator = with_privacy(generator, self.settings.privacy.policy())
            except GenerationError as exc:
                self._generator_error = str(exc)
            except ImportError as exc:
                self._generator_error = f"the '{self.settings.llm.generator}' generator cannot load: {exc}"
        return self._generator

    @property
    def generator_error(self) -> str | None:
        self.generator()
        return self._generator_error

    def model_warm_ups(self) -> list[Callable[[], None]]:
        """The configured generator's and judge's ``warm_up`` (import the SDK, build the
        client), for a worker thread; a model without one (the demo's recording) has none."""
        warm_ups = (getattr(model, "warm_up", None) for model in (self.generator(), self.judge()))
        return [warm for warm in warm_ups if warm is not None]

    @property
    def judge_off(self) -> bool:
        """The desk turned the safety judge off: AI steps are checked by the rules alone."""
        return self.settings.llm.judge == "off"

    def judge(self) -> NodeJudge | None:
        """The configured safety judge, built once; None when off or unavailable (see ``judge_error``)."""
        if self._judge is None and self._judge_error is None and not self.judge_off:
            from rflow_tui.ai.errors import NoJudgeError
            from rflow_tui.ai.registry import make_judge

            try:
                self._judge = make_judge(self.settings.llm)
            except NoJudgeError as exc:
                self._judge_error = str(exc)
        return self._judge

    @property
    def judge_error(self) -> str | None:
        self.judge()
        return self._judge_error

    def step_judge(self) -> NodeJudge | None:
        """What each new AI step is judged by: None when off, else the judge, or a stand-in
        that refuses every step when the judge cannot be built (nothing is shown unjudged)."""
        if self.judge_off:
            return None
        from rflow_tui.ai.judge import UnavailableJudge

        return self.judge() or UnavailableJudge(self.judge_error)

    @property
    def ai_error(self) -> str | None:
        """Why an AI build cannot run (no generator, or no safety judge), or None."""
        if self.generator_error:
            return self.generator_error
        return None if self.judge_off or not self.judge_error else f"no safety judge: {self.judge_error}"

    @property
    def is_l1(self) -> bool:
        from rflow_tui.services.access import Need, has

        return has(self.user, Need.WALK)

    @property
    def is_engineer(self) -> bool:
        from rflow_tui.services.access import Need, has

        return has(self.user, Need.REVIEW)


async def open_context(settings: Settings, email: str | None = None) -> AppContext:
    """Open the store and log the user in; raises ServiceError with a how-to-fix message."""
    from rflow_tui.db import open_store, store_errors
    from rflow_tui.services.users import find_login

    engine, open_db = await open_store(settings.resolved_database_url)
    try:
        async with store_errors(), open_db() as db:
            user = await find_login(db, email or settings.user)
    except Exception:
        await engine.dispose()
        raise
    return AppContext(settings=settings, engine=engine, open_db=open_db, user=user)
