"""The service layer: each function owns one rule's write and opens its own short transaction around it.

HTTP routes, dashboard pages, the Label Studio routes and the CLI's local commands call these (never each other),
with the caller read and checked in the request's read-only session. A service reads again, inside its transaction,
whatever its rule changes, and commits before it returns: nothing slow runs inside, and no request holds a write lock
while it authenticates, checks or waits (Prefect's ``server/models`` shape).
"""

from sqlalchemy.orm import Session, sessionmaker

Writes = sessionmaker[Session]
