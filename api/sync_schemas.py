"""`POST /sync/diff`: a folder's file hashes in, what `docassist sync` must send out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from docassist.pipelines.documents.folder_diff import MAX_FOLDER_FILES, MAX_PATH_CHARS, FolderDiff, FolderFile
from docassist.pipelines.spaces import SPACE_PATTERN


class SyncFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="the file's path in the folder, `/`-separated (`sub/dir/report.pdf`): the name it is uploaded "
        "under and its document's `filename`",
    )
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the file's bytes, 64 lowercase hex digits")
    size: StrictInt = Field(ge=0, description="bytes (told, not compared: the diff goes by `sha256`)")

    @field_validator("path")
    @classmethod
    def _unicode(cls, path: str) -> str:
        """A path is text an answer can carry: a lone surrogate (`\\ud800` in the JSON) is refused."""
        try:
            path.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("a path is Unicode text: a lone surrogate cannot be one") from exc
        return path


class SyncDiffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space_id: str = Field(default="default", pattern=SPACE_PATTERN, description="1–64 of [A-Za-z0-9_-]")
    files: list[SyncFile] = Field(max_length=MAX_FOLDER_FILES, description=f"at most {MAX_FOLDER_FILES:,}")
    delete: StrictBool = Field(
        default=False,
        description="documents not in the folder will be deleted: a file whose bytes only such a document holds "
        "is listed in `upload`, not `duplicate`",
    )

    def folder(self) -> list[FolderFile]:
        return [FolderFile(f.path, f.sha256, f.size) for f in self.files]


class SyncUpdate(BaseModel):
    path: str
    doc_id: str = Field(description="the document the file becomes the next version of (`PUT /documents/{id}`)")


class SyncGone(BaseModel):
    doc_id: str
    filename: str


class SyncDuplicate(BaseModel):
    path: str
    doc_id: str = Field(description="the document that already holds these bytes")
    filename: str = Field(description="that document's filename")


class SyncDiffResponse(BaseModel):
    space_id: str
    upload: list[str] = Field(description="paths with no document of their name: `POST /ingest` them")
    update: list[SyncUpdate] = Field(description="paths whose document holds other bytes: a new version each")
    delete: list[SyncGone] = Field(
        description="documents of the space whose filename is no path of the folder (listed even without `delete`)"
    )
    duplicate: list[SyncDuplicate] = Field(
        description="paths whose bytes a document of another name holds: the space keeps one document per content, "
        "nothing to send"
    )
    unchanged: int = Field(description="paths whose document holds the same bytes")

    @classmethod
    def of(cls, space_id: str, diff: FolderDiff) -> SyncDiffResponse:
        return cls(
            space_id=space_id,
            upload=diff.upload,
            update=[SyncUpdate(path=c.path, doc_id=c.doc_id) for c in diff.update],
            delete=[SyncGone(doc_id=g.doc_id, filename=g.filename) for g in diff.delete],
            duplicate=[SyncDuplicate(path=d.path, doc_id=d.doc_id, filename=d.filename) for d in diff.duplicate],
            unchanged=diff.unchanged,
        )
