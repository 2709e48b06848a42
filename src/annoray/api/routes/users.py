from fastapi import APIRouter, status

from annoray.api.deps import AdminUser, CurrentUser, SessionDep
from annoray.api.schemas import UserCreate, UserCreated, UserOut
from annoray.platform.errors import Conflict, Errors
from annoray.platform.store.repositories import UserRepository
from annoray.platform.store.tokens import new_token

router = APIRouter(tags=["users"])


@router.post("/api/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, _: AdminUser) -> UserCreated:
    repo = UserRepository(session)
    if repo.by_username(body.username) is not None:
        raise Conflict(Errors.E501.format(username=body.username))
    token = new_token()
    user = repo.add(body.username, token)
    session.commit()
    return UserCreated(id=user.id, username=user.username, is_admin=user.is_admin, token=token)


@router.get("/api/users/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
