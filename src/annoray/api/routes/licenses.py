from datetime import UTC, datetime

from fastapi import APIRouter, status

from annoray.api.deps import AdminUser, Id, SchedulerDep, SessionDep, SettingsDep
from annoray.api.schemas import LicenseDocument, LicenseOut
from annoray.platform.access.licenses import install_license, license_views, uninstall_license

router = APIRouter(tags=["licenses"])


def _view(session: SessionDep, license_id: int) -> LicenseOut:
    return next(LicenseOut.model_validate(v) for v in license_views(session, datetime.now(UTC)) if v["id"] == license_id)


@router.post("/api/licenses", response_model=LicenseOut, status_code=status.HTTP_201_CREATED)
def upload_license(body: LicenseDocument, admin: AdminUser, session: SessionDep, settings: SettingsDep,
                   scheduler: SchedulerDep) -> LicenseOut:
    """Install a license whose Ed25519 signature matches its issuer's key; forged, expired or malformed ones are refused."""
    license = install_license(session, body.model_dump(), settings.licenses.issuers, datetime.now(UTC))
    session.commit()
    scheduler.wake()
    return _view(session, license.id)


@router.get("/api/licenses", response_model=list[LicenseOut])
def list_licenses(admin: AdminUser, session: SessionDep) -> list[LicenseOut]:
    """Installed licenses: scopes, seats total and leased (and by what), expiry; never the document or its secrets."""
    return [LicenseOut.model_validate(v) for v in license_views(session, datetime.now(UTC))]


@router.delete("/api/licenses/{license_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_license(license_id: Id, admin: AdminUser, session: SessionDep) -> None:
    """Remove a license none of whose seats is leased."""
    uninstall_license(session, license_id)
    session.commit()
