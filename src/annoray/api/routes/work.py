"""Slow work a request handed off (an upload's pages, a config's check, a model's import), to poll."""

from fastapi import APIRouter

from annoray.api.deps import CurrentUser, Id, SessionsDep, SettingsDep, WritesDep
from annoray.api.schemas import WorkOut
from annoray.platform.services.work import work_of

router = APIRouter(tags=["work"])


@router.get("/api/work/{wid}", response_model=WorkOut)
def get_work(wid: Id, user: CurrentUser, reads: SessionsDep, writes: WritesDep,
             settings: SettingsDep) -> WorkOut:
    """Slow work you asked for: ``queued``, ``running``, then ``succeeded`` with ``result`` (what the request would have
    answered) or ``failed`` with ``error`` (its refusal). Work whose API process stopped is failed (E516)."""
    return WorkOut.model_validate(work_of(reads, writes, user, wid, settings.api.work_lost_after_s))
