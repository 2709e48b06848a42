"""Documents for Visual NER: uploads split into pages, the page images, their OCR words."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from sqlalchemy.orm import Session, sessionmaker

from annoray.api.deps import Membership, DocumentDep, PageNumber, MembershipDep, SchedulerDep, SessionDep, SettingsDep, WritesDep
from annoray.api.schemas import WORK_ACCEPTED, FileOut, FilesOut, OcrWordOut, PageOcrOut, PageOut, PageWordsIn
from annoray.platform.access.roles import ANY_MEMBER, OWNER_MANAGER, require_role
from annoray.api.work import Outcome, Works
from annoray.platform.errors import ErrorDetail, Errors, InvalidInput
from annoray.platform.labeling.pages import page_url
from annoray.platform.labeling.projects import project_config
from annoray.platform.services import labeling
from annoray.platform.settings import Settings
from annoray.platform.store.repositories import DocumentRepository
from annoray.platform.store.tables import Document, Page
from annoray.scheduler import SchedulerClient, Upload, page_image, split_uploads, store_documents

router = APIRouter(tags=["files"])


def _page(document_id: int, page: Page) -> dict:
    return {"page": page.page, "url": page_url(document_id, page.page), "width": page.width, "height": page.height,
            "ocr": page.ocr_status, "error": page.ocr_error, "language": page.ocr_language, "attempts": page.ocr_attempts,
            "seconds": page.ocr_seconds, "word_count": len(page.ocr_words) if page.ocr_words is not None else None}


def file_out(document: Document) -> FileOut:
    return FileOut(id=document.id, project_id=document.project_id, filename=document.filename, media_type=document.media_type,
                   size=document.size, sha256=document.sha256, created_at=document.created_at,
                   pages=[PageOut(**_page(document.id, p)) for p in document.pages])


@router.post("/api/projects/{pid}/files", response_model=FilesOut, status_code=status.HTTP_201_CREATED,
             responses=WORK_ACCEPTED)
def upload(
    request: Request,
    m: MembershipDep, writes: WritesDep, settings: SettingsDep, scheduler: SchedulerDep,
    file: Annotated[list[UploadFile] | None, File(description="PNG, JPEG, TIFF or PDF; repeat the part for several files.")] = None,
    tasks: Annotated[bool, Query(description="Also create one unannotated task per page, its image the page's url.")] = False,
) -> FilesOut:
    """Store documents as pages (one per image, per PDF page, per TIFF frame) and queue their OCR. The upload is
    checked whole: one bad file refuses it all, and nothing is stored. Pages are drawn off the request: an upload that
    takes more than a moment answers 202 with the work to poll (its result is this answer)."""
    done = upload_documents(m, request.app.state.works, writes, settings, scheduler, file or [], tasks=tasks)
    return FilesOut(**done.result) if done.result is not None else done.accepted()


def upload_documents(m: Membership, works: Works, writes: sessionmaker[Session], settings: Settings,
                     scheduler: SchedulerClient, files: list[UploadFile], *, tasks: bool) -> Outcome:
    require_role(m.member.role, OWNER_MANAGER, "upload documents")
    config = project_config(m.project)
    image_key = next((key for tag, key in config.objects.values() if tag == "Image"), None)
    if tasks and image_key is None:
        raise InvalidInput(Errors.E206.format(key="image"), [ErrorDetail("the labeling config has no <Image> to make tasks for",
                                                                           field="tasks")])
    uploads = [Upload(f.filename or "upload", f.content_type, f.file.read()) for f in files]
    user, project_id = m.user, m.project.id

    def store() -> dict[str, Any]:
        split = split_uploads(settings, project_id, uploads)  # no transaction is open meanwhile
        documents, task_ids = store_documents(writes, settings, project_id, user, split,
                                              image_key=image_key if tasks else None)
        scheduler.wake()  # OCR the new pages
        return FilesOut(items=[file_out(d) for d in documents], task_ids=task_ids).model_dump(mode="json")
    return works.run("upload", user.id, project_id, store)


def files_of(session: Session, project_id: int) -> list[FileOut]:
    return [file_out(d) for d in DocumentRepository(session).for_project(project_id)]


@router.get("/api/projects/{pid}/files", response_model=list[FileOut])
def list_files(m: MembershipDep, session: SessionDep) -> list[FileOut]:
    require_role(m.member.role, ANY_MEMBER, "list documents")
    return files_of(session, m.project.id)


@router.get("/api/files/{fid}", response_model=FileOut)
def get_file(f: DocumentDep) -> FileOut:
    return file_out(f.document)


@router.get("/api/files/{fid}/pages/{n}", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The page image, upright."}})
def get_page_image(f: DocumentDep, session: SessionDep, settings: SettingsDep, n: PageNumber) -> Response:
    return page_png(session, settings, f.document.id, n)


def page_png(session: Session, settings: Settings, document_id: int, n: int) -> Response:
    page = DocumentRepository(session).page(document_id, n)
    return Response(page_image(settings, page), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/files/{fid}/pages/{n}/ocr", response_model=PageOcrOut)
def get_page_ocr(f: DocumentDep, session: SessionDep, n: PageNumber) -> PageOcrOut:
    page = DocumentRepository(session).page(f.document.id, n)
    return _ocr_out(f.document.id, page)


@router.put("/api/files/{fid}/pages/{n}/ocr", response_model=PageOcrOut)
def put_page_ocr(f: DocumentDep, writes: WritesDep, n: PageNumber, body: PageWordsIn) -> PageOcrOut:
    """Give a page the words of an OCR of your own (or of a data set's transcription), in reading order: they replace
    what the page had, its OCR is done, and its tasks train and pre-annotate on them. Owner or manager."""
    require_role(f.membership.member.role, OWNER_MANAGER, "set a page's words")
    page = labeling.replace_page_words(writes, f.document.id, n, [[w.text, *w.box, w.block, w.line] for w in body.words])
    return _ocr_out(f.document.id, page)


def _ocr_out(document_id: int, page: Page) -> PageOcrOut:
    words = [OcrWordOut(text=w[0], box=w[1:5], block=w[5], line=w[6]) for w in page.ocr_words or []]
    return PageOcrOut(**_page(document_id, page), words=words)
