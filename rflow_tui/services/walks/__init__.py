"""Walks, from start to end (SPEC "Walk sessions"): start, step, note, resolve, escalate.

Every operation takes the store's ``AsyncSession`` first and an ``actor`` (the user
doing it); every lookup is scoped to the actor's account, and the actor's rights
are read fresh inside the operation (``access.authorize``). Each mutation is one
write transaction that takes the write lock before reading the session, so the
audit entry, ticket status and notifications commit together with the change and
two processes never lose each other's steps.

Integrity between windows and people:
- a ticket has at most one active walk (checked here, and by a unique index);
- a walk's ``version`` counts changes to its position; a caller that passes the
  version it saw is refused (StaleWalk) if another window moved the walk since;
- each served AI node carries a ``token`` made here, and an answer must name it:
  a model that reuses a node id cannot let a stale window answer a newer question.
"""
