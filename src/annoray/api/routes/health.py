from fastapi import APIRouter

from annoray import __version__
from annoray.api.deps import SessionsDep
from annoray.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health)
def health(sessions: SessionsDep) -> Health:
    return Health(version=__version__, database=sessions.kw["bind"].dialect.name)
