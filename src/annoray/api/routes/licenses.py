from datetime import UTC, datetime

from fastapi import APIRouter, status

from annoray.api.deps import AdminUser, Id, SchedulerDep, SessionDep, SettingsDep, WritesDep
from annoray.api.schemas import LicenseDocument, LicenseOut
from annoray.platform.access.licenses import license_views
from annoray.platform.services import access

router = APIRouter(tags=["licenses"])


@router.post("/api/licenses", response_model=LicenseOut, status_code=status.HTTP_201_CREATED)
def upload_license(body: LicenseDocument, admin: AdminUser, writes: WritesDep, settings: SettingsDep,
                   scheduler: SchedulerDep) -> LicenseOut:
    """Install a license whose Ed25519 signature matches its issuer's key; forged, expired or malformed ones are refused."""
    view = access.install_license(writes, body.model_dump(), settings.licenses.issuers)
    scheduler.wake()
    return LicenseOut.model_validate(view)


@router.get("/api/licenses", response_model=list[LicenseOut])
def list_licenses(admin: AdminUser, session: SessionDep) -> list[LicenseOut]:
    """Installed licenses: scopes, seats total and leased (and by what), expiry; never the document or its secrets."""
    return [LicenseOut.model_validate(v) for v in license_views(session, datetime.now(UTC))]


@router.delete("/api/licenses/{license_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_license(license_id: Id, admin: AdminUser, writes: WritesDep) -> None:
    """Remove a license none of whose seats is leased."""
    access.uninstall_license(writes, license_id)
